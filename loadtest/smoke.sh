#!/usr/bin/env bash
# Benchmark smoke for CI (seconds, no release build): catches the two regressions of
# issue 13 that a functional test would not see.
#
# (a) One Redis script call per room message. A private redis-server, one gateway on
#     it, MEMBERS members in one room and a publisher sending MSGS room messages
#     (`swarm --mode fanout`). From `INFO commandstats` it asserts that the publishing
#     window cost exactly as many script calls (evalsha + eval) as messages published.
#     Background script calls are made impossible rather than estimated: presence
#     refresh runs every SWITCHBOARD_PRESENCE_TTL / 3 (set to 1 h here) and the ranked
#     matcher every SWITCHBOARD_RANK_INTERVAL (1 h here), and an idle window of the same
#     clients just before publishing must show zero script calls, which proves nothing
#     else calls scripts meanwhile. Counting the calls of one script by SHA would need
#     the SHA (it changes with the script) and MONITOR; the zero idle window gives the
#     same certainty. The swarm keeps its clients connected a moment after its result
#     line, so the disconnect clean-up is not counted.
# (b) Memory per idle connection. A fresh gateway on the same Redis, IDLE idle
#     logged-in clients (each in one of IDLE/10 rooms); fails if (RSS with them - RSS
#     before) / IDLE exceeds MAX_KIB_PER_CONN.
#     Measured 2026-11-29 with the debug binary (commit a865e10, jemalloc, 2,000
#     clients, Redis, 4 runs): 12.0-13.1 KiB per connection; bound 25 KiB (about 2x).
#     (The release binary: see loadtest/RESULTS.md.)
#
# Prints one line `smoke {json}` and exits non-zero on failure.
# Usage: loadtest/smoke.sh BIN   (BIN = target/debug/switchboard; the load generator is
#   BIN's sibling examples/swarm, which `cargo test` builds). Env: MEMBERS=5 MSGS=50
#   IDLE=2000 MAX_KIB_PER_CONN=25
set -euo pipefail
BIN=${1:?usage: loadtest/smoke.sh target/debug/switchboard}
SWARM=$(dirname "$BIN")/examples/swarm
[ -x "$BIN" ] || { echo "smoke: no gateway binary at $BIN" >&2; exit 1; }
[ -x "$SWARM" ] || { echo "smoke: no $SWARM (cargo test builds it)" >&2; exit 1; }
MEMBERS=${MEMBERS:-5}
MSGS=${MSGS:-50}
IDLE=${IDLE:-2000}
MAX_KIB_PER_CONN=${MAX_KIB_PER_CONN:-25}
SECRET=smoke-secret
OUT=$(mktemp -d /tmp/smoke-XXXXXX)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

PIDS=()
cleanup() {
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill "${PIDS[i]}" 2>/dev/null || true
    wait "${PIDS[i]}" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() { echo "smoke: FAIL: $*" >&2; echo "smoke: logs in $OUT" >&2; exit 1; }
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_line() { # pattern file pid
  for _ in $(seq 1 1500); do
    grep -q "$1" "$2" && return 0
    kill -0 "$3" 2>/dev/null || fail "load generator ended before '$1' (see $2)"
    sleep 0.02
  done
  fail "no '$1' within 30 s (see $2)"
}
# evalsha + eval calls so far that did not fail. A failed one is the NOSCRIPT answer to
# the very first call of a script on this Redis (the gateway then loads it and calls
# again), which Redis counts in `calls` and in `failed_calls`.
script_calls() {
  redis-cli -p "$RPORT" info commandstats | tr -d '\r' | awk -F: '/^cmdstat_(evalsha|eval):/{
      n = split($2, kv, /[=,]/)
      for (i = 1; i < n; i += 2) {
        if (kv[i] == "calls") c += kv[i + 1]
        if (kv[i] == "failed_calls") c -= kv[i + 1]
      }
    } END{print c + 0}'
}

RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no \
  --logfile "$OUT/redis.log" &
PIDS+=($!)
for _ in $(seq 1 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

start_gateway() { # port log
  SWITCHBOARD_JWT_SECRET=$SECRET SWITCHBOARD_LISTEN=127.0.0.1:$1 \
  SWITCHBOARD_REDIS_URL=redis://127.0.0.1:$RPORT SWITCHBOARD_PRESENCE_TTL=1h \
  SWITCHBOARD_RANK_INTERVAL=1h SWITCHBOARD_RATE_LIMIT=100000 SWITCHBOARD_RATE_BURST=100000 \
  RUST_LOG=warn "$BIN" >"$OUT/$2" 2>&1 &
  GW=$!
  PIDS+=("$GW")
  for _ in $(seq 1 150); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$1/readyz")" = 200 ] && return 0
    sleep 0.2
  done
  fail "gateway on :$1 not ready"
}

# (a) Script calls per room message.
PORT=$(free_port)
start_gateway "$PORT" gw-a.log
GW_A=$GW
"$SWARM" --url "ws://127.0.0.1:$PORT/ws" --secret "$SECRET" --mode fanout --conns "$MEMBERS" \
  --room smoke --rate "$MSGS" --seconds 1 --window 1000 --settle 1 >"$OUT/fanout.log" 2>&1 &
SW=$!
PIDS+=("$SW")
wait_line '^ready' "$OUT/fanout.log" "$SW"
s0=$(script_calls)
wait_line '^settled' "$OUT/fanout.log" "$SW"
s1=$(script_calls)
wait_line '^fanout-result' "$OUT/fanout.log" "$SW"
s2=$(script_calls)
wait "$SW" || fail "swarm fanout exited with $?"
read -r published deliveries lost < <(python3 -c '
import json, sys
r = json.loads(sys.argv[1])
print(r["published"], r["deliveries"], r["lost"])' "$(grep '^fanout-result ' "$OUT/fanout.log" | cut -d' ' -f2-)")
idle_calls=$((s1 - s0))
publish_calls=$((s2 - s1))
kill "$GW_A"; wait "$GW_A" 2>/dev/null || true

# (b) RSS per idle connection.
PORT=$(free_port)
start_gateway "$PORT" gw-b.log
sleep 1
base=$(awk '/^VmRSS/{print $2}' "/proc/$GW/status")
"$SWARM" --url "ws://127.0.0.1:$PORT/ws" --secret "$SECRET" --mode idle --conns "$IDLE" \
  --rooms $((IDLE / 10 > 0 ? IDLE / 10 : 1)) --room idle --seconds 600 >"$OUT/idle.log" 2>&1 &
SW=$!
PIDS+=("$SW")
wait_line '^connected' "$OUT/idle.log" "$SW"
connected=$(sed -n 's/^connected \([0-9]*\) clients.*/\1/p' "$OUT/idle.log")
sleep 2
loaded=$(awk '/^VmRSS/{print $2}' "/proc/$GW/status")
per_conn=$(awk -v b="$base" -v l="$loaded" -v n="$IDLE" 'BEGIN{printf "%.2f", (l - b) / n}')

echo "smoke {\"messages\":$published,\"members\":$MEMBERS,\"deliveries\":$deliveries,\"lost\":$lost,\"script_calls\":$publish_calls,\"idle_script_calls\":$idle_calls,\"idle_clients\":$connected,\"baseline_kib\":$base,\"loaded_kib\":$loaded,\"kib_per_conn\":$per_conn,\"max_kib_per_conn\":$MAX_KIB_PER_CONN}"
[ "$published" -ge $((MSGS * 8 / 10)) ] || fail "only $published of ~$MSGS messages published"
[ "$lost" = 0 ] || fail "$lost deliveries lost"
[ "$idle_calls" = 0 ] || fail "$idle_calls script calls while idle: background noise would hide the count"
[ "$publish_calls" = "$published" ] \
  || fail "$publish_calls Redis script calls for $published room messages (want exactly one each)"
[ "$connected" = "$IDLE" ] || fail "only $connected of $IDLE idle clients connected"
awk -v p="$per_conn" -v m="$MAX_KIB_PER_CONN" 'BEGIN{exit !(p <= m)}' \
  || fail "$per_conn KiB RSS per idle connection (bound $MAX_KIB_PER_CONN)"
echo "smoke: ok ($publish_calls script calls for $published messages; $per_conn KiB per idle connection)"
rm -rf "$OUT"
