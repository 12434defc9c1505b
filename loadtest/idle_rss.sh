#!/usr/bin/env bash
# Memory per idle logged-in WebSocket connection: RSS of the gateway with N clients
# connected (each logged in and in one of N/10 rooms), minus its RSS before they came.
# Usage: loadtest/idle_rss.sh [N]   (extra gateway settings via SWITCHBOARD_* env vars)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
ulimit -n $((N + 1000)) 2>/dev/null || true
cargo build --release --quiet --bin switchboard --example swarm
PORT=${PORT:-18080}
SWITCHBOARD_JWT_SECRET=bench SWITCHBOARD_LISTEN=127.0.0.1:$PORT RUST_LOG=warn \
  ./target/release/switchboard &
GW=$!
trap 'kill $GW 2>/dev/null' EXIT
sleep 1
base=$(awk '/VmRSS/{print $2}' /proc/$GW/status)
./target/release/examples/swarm --url ws://127.0.0.1:$PORT/ws --secret bench --mode idle \
  --conns "$N" --rooms $((N / 10 > 0 ? N / 10 : 1)) --room idle --seconds 8 &
SW=$!
# Sample while every client is connected and idle.
for _ in $(seq 1 120); do
  c=$(curl -s 127.0.0.1:$PORT/metrics | awk '/^switchboard_connections\{transport="ws"\}/{print $2}')
  [ "${c:-0}" -ge "$N" ] && break
  sleep 0.5
done
sleep 3
rss=$(awk '/VmRSS/{print $2}' /proc/$GW/status)
wait $SW
awk -v n="$N" -v b="$base" -v r="$rss" 'BEGIN{printf "connections=%d baseline_rss_kib=%d loaded_rss_kib=%d per_connection_kib=%.1f\n", n, b, r, (r-b)/n}'
