#!/usr/bin/env bash
# Cross-replica delivery: a private redis-server, two gateway replicas, CLIENTS WebSocket
# clients spread over both in one room, one publisher on replica A at RATE msg/s for
# SECONDS. Prints latency percentiles and Redis commands per published message
# (from INFO commandstats, minus an idle period of the same length).
# Usage: loadtest/cross_replica.sh [CLIENTS] [RATE] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${1:-200}
RATE=${2:-100}
SECONDS_=${3:-10}
RPORT=${RPORT:-16390}
cargo build --release --quiet --bin switchboard --example swarm
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
REDIS=$!
GWS=()
trap 'kill "${GWS[@]}" $REDIS 2>/dev/null' EXIT
sleep 0.5
for port in 18081 18082; do
  SWITCHBOARD_JWT_SECRET=bench SWITCHBOARD_LISTEN=127.0.0.1:$port \
  SWITCHBOARD_REDIS_URL=redis://127.0.0.1:$RPORT SWITCHBOARD_RATE_LIMIT=100000 \
  SWITCHBOARD_RATE_BURST=100000 RUST_LOG=warn ./target/release/switchboard &
  GWS+=($!)
done
for port in 18081 18082; do
  until [ "$(curl -s -o /dev/null -w '%{http_code}' 127.0.0.1:$port/readyz)" = 200 ]; do sleep 0.2; done
done
calls() { redis-cli -p "$RPORT" info commandstats | awk -F'[=,]' '/^cmdstat_/{n+=$2} END{print n}'; }
c0=$(calls); sleep "$SECONDS_"; c1=$(calls)
idle=$((c1 - c0))
OUT=$(mktemp)
./target/release/examples/swarm --url ws://127.0.0.1:18081/ws,ws://127.0.0.1:18082/ws \
  --secret bench --mode fanout --conns "$CLIENTS" --room xr --seconds "$SECONDS_" \
  --rate "$RATE" --window 1000 --payload 64 >"$OUT" &
SW=$!
until grep -q '^connected' "$OUT"; do sleep 0.05; done
sleep 0.5
c1=$(calls); s1=$(redis-cli -p "$RPORT" info commandstats)
wait $SW
c2=$(calls); s2=$(redis-cli -p "$RPORT" info commandstats)
cat "$OUT"
published=$(sed -n 's/.*published \([0-9]*\).*/\1/p' "$OUT")
echo "redis commands while publishing: $((c2 - c1)) for $published messages; idle background: $idle per ${SECONDS_}s"
awk -v b="$((c2 - c1))" -v i="$idle" -v p="$published" 'BEGIN{printf "redis commands per published message: %.2f (%.2f without idle background), counting commands run inside Lua\n", b/p, (b-i)/p}'
echo "by command while publishing (calls):"
join <(echo "$s1" | awk -F'[:=,]' '/^cmdstat_/{print $1, $3}' | sort) \
     <(echo "$s2" | awk -F'[:=,]' '/^cmdstat_/{print $1, $3}' | sort) \
  | awk '$3 - $2 > 0 {printf "  %s %d\n", substr($1, 9), $3 - $2}'
