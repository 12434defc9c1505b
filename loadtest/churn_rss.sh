#!/usr/bin/env bash
# RSS of one gateway (in-memory backend) through CYCLES connect/disconnect cycles of N
# idle logged-in WebSocket clients: before any client, while all are connected, and
# SETTLE seconds after they all left. Shows what a mass disconnect leaves behind and
# whether it accumulates from one cycle to the next.
# Usage: loadtest/churn_rss.sh [N=10000] [CYCLES=4]
# Env: SETTLE=12 (seconds after a disconnect before reading RSS), PORT=18400,
#   NO_BUILD=1 (use ${CARGO_TARGET_DIR:-target}/release as it is), WRAP (a command the
#   gateway runs under, e.g. "env LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2").
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
CYCLES=${2:-4}
SETTLE=${SETTLE:-12}
PORT=${PORT:-18400}
BIN=${CARGO_TARGET_DIR:-target}/release
[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet --bin switchboard --example swarm
ulimit -n $((N + 2000))
# shellcheck disable=SC2086
SWITCHBOARD_JWT_SECRET=bench SWITCHBOARD_LISTEN=127.0.0.1:$PORT \
  SWITCHBOARD_ADMIN_LISTEN=127.0.0.1:$((PORT + 1)) SWITCHBOARD_MAX_CONNECTIONS=$N \
  RUST_LOG=warn ${WRAP:-} "$BIN/switchboard" &
GW=$!
trap 'kill $GW 2>/dev/null' EXIT
sleep 1
rss() { awk '/VmRSS/{print $2}' "/proc/$GW/status"; }
echo "baseline_rss_kib=$(rss)"
for k in $(seq 1 "$CYCLES"); do
  "$BIN/examples/swarm" --url "ws://127.0.0.1:$PORT/ws" --secret bench --mode idle \
    --conns "$N" --rooms $((N / 10 > 0 ? N / 10 : 1)) --room "churn$k" --seconds 4 \
    >/dev/null 2>&1 &
  SW=$!
  for _ in $(seq 1 120); do
    c=$(curl -s "127.0.0.1:$((PORT + 1))/metrics" |
      awk '/^switchboard_connections\{transport="ws"\}/{print $2}')
    [ "${c:-0}" -ge "$N" ] && break
    sleep 0.5
  done
  sleep 1
  loaded=$(rss)
  wait $SW
  sleep "$SETTLE"
  echo "cycle=$k connected_rss_kib=$loaded after_disconnect_rss_kib=$(rss)"
done
