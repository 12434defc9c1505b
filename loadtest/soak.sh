#!/usr/bin/env bash
# Bounded soak: a private redis-server (ephemeral port, no persistence), two release
# gateway replicas sharing it, and `swarm --mode soak` driving CONNS WebSocket clients
# spread over both replicas for DURATION seconds: steady chat in rooms, direct messages,
# connect/disconnect churn (a churned client comes back on the other replica), friend
# games played back to back and players cycling through the ranked queue.
#
# Every INTERVAL seconds it samples, per replica, RSS (VmRSS), open file descriptors
# (/proc/PID/fd), OS threads, and the gauges the gateway exposes on /metrics
# (switchboard_connections, switchboard_outbound_queued_frames,
# switchboard_redis_subscribed_channels, switchboard_rank_queue_length; the gateway does
# not expose a tokio task count, and each session is one task, so connections stand in
# for it) and CPU seconds, plus Redis used_memory, CPU, clients, key count and the keys of
# game logs, user inboxes and msg-id records, into $OUT/soak.csv; at the end the Redis
# keys by pattern and the bytes per key of the main kinds go to $OUT/redis-keys.txt. At the end
# it renders $OUT/soak.png (matplotlib from a private venv, $VENV) and prints one line
#   soak-result {json}
# with the growth after warm-up: the mean of the last 3 samples against the mean of the
# first 3 samples at or after WARMUP seconds, per replica and for Redis.
#
# Usage: loadtest/soak.sh [CONNS=10000] [DURATION_S=600]
# Settings (env): WARMUP=180 INTERVAL=10 ROOMS=CONNS/10 RATE=100 (chat msg/s in all)
#   DM_RATE=20 (direct messages/s) CHURN=20 (reconnects/s) GAME_PAIRS=20 RANKED=40
#   PAYLOAD=64 CONNECT_PARALLEL=200 OUT=/tmp/soak-<time> VENV=/tmp/soak-venv
#   NO_BUILD=1 (use the binaries already in ${CARGO_TARGET_DIR:-target}/release).
# Retention is bounded so Redis can reach a steady state within the warm-up (each key
# has a TTL refreshed on write): SWITCHBOARD_HISTORY_SIZE=10 messages per room (default
# 100; at RATE=100 over 1,000 rooms a room fills 10 in about 100 s) and SWITCHBOARD_INBOX_TTL=2m for DM/ranked inboxes (default 7 days). With the
# defaults Redis keeps growing until every room history is full and grows with the DM
# inboxes for their TTL: retention, bounded by rooms x history_size + users x
# inbox_size. Any SWITCHBOARD_* variable set in the environment wins.
#
# Kernel and limits (everything runs on one host over loopback):
# - Open files: swarm holds one socket per client (CONNS + ~200) and each replica about
#   CONNS/2 + a few. The script raises the soft `ulimit -n` to the hard limit and stops
#   if that is below CONNS + 2000. To raise the hard limit: `ulimit -Hn` as root,
#   /etc/security/limits.conf (nofile), or LimitNOFILE= in a systemd unit; fs.nr_open
#   caps it (default 1048576) and fs.file-max caps the whole system.
# - Ports: every client connection takes an ephemeral port from
#   net.ipv4.ip_local_port_range (default 32768-60999: 28,232 per destination address
#   and port), so 10,000 connections fit; churned sockets the client closed sit in
#   TIME_WAIT for 60 s (at CHURN=20/s about 1,200 at a time); net.ipv4.tcp_tw_reuse
#   lets new outgoing connections reuse them if the range ever runs short.
# - Accept backlog: net.core.somaxconn (4096 here) and net.ipv4.tcp_max_syn_backlog
#   bound connections waiting for accept; swarm opens at most CONNECT_PARALLEL at once.
# The values seen are printed at the start and kept in $OUT/env.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
# free_port, PIDS and the cleanup trap.
# shellcheck source=loadtest/lib.sh
. loadtest/lib.sh
CONNS=${1:-10000}
DURATION=${2:-600}
WARMUP=${WARMUP:-180}
INTERVAL=${INTERVAL:-10}
ROOMS=${ROOMS:-$((CONNS / 10 > 0 ? CONNS / 10 : 1))}
RATE=${RATE:-100}
DM_RATE=${DM_RATE:-20}
CHURN=${CHURN:-20}
GAME_PAIRS=${GAME_PAIRS:-20}
RANKED=${RANKED:-40}
PAYLOAD=${PAYLOAD:-64}
CONNECT_PARALLEL=${CONNECT_PARALLEL:-200}
VENV=${VENV:-/tmp/soak-venv}
OUT=${OUT:-/tmp/soak-$(date -u +%Y%m%dT%H%M%S)}
BIN=${CARGO_TARGET_DIR:-target}/release
SECRET=soak-secret
mkdir -p "$OUT"

# Open files: soft limit up to the hard limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
if [ "$NOFILE" != unlimited ] && [ "$NOFILE" -lt $((CONNS + 2000)) ]; then
  echo "soak: ulimit -n is $NOFILE, need at least $((CONNS + 2000)) for $CONNS connections" >&2
  echo "soak: raise the hard limit (see the comment at the top of $0) or use fewer" >&2
  exit 1
fi
{
  echo "ulimit -n (soft/hard): $NOFILE/$(ulimit -Hn)"
  for k in fs.file-max fs.nr_open net.ipv4.ip_local_port_range net.core.somaxconn \
           net.ipv4.tcp_max_syn_backlog net.ipv4.tcp_tw_reuse net.ipv4.tcp_fin_timeout; do
    echo "$k = $(cat /proc/sys/${k//.//} 2>/dev/null | tr '\t' ' ')"
  done
  echo "nproc: $(nproc); memory: $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
} | tee "$OUT/env.txt"

if [ -z "${NO_BUILD:-}" ]; then
  cargo build --release --quiet --bin switchboard --example swarm
fi

RPORT=$(free_port)
PORT_A=$(free_port)
PORT_B=$(free_port)
while [ "$PORT_B" = "$PORT_A" ] || [ "$PORT_B" = "$RPORT" ]; do PORT_B=$(free_port); done
while [ "$PORT_A" = "$RPORT" ]; do PORT_A=$(free_port); done


redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no \
  --logfile "$OUT/redis.log" &
REDIS=$!
PIDS+=("$REDIS")
until redis-cli -p "$RPORT" ping >/dev/null 2>&1; do sleep 0.1; done

start_gateway() {
  SWITCHBOARD_JWT_SECRET=$SECRET SWITCHBOARD_LISTEN=127.0.0.1:$1 \
  SWITCHBOARD_REDIS_URL=redis://127.0.0.1:$RPORT \
  SWITCHBOARD_HISTORY_SIZE=${SWITCHBOARD_HISTORY_SIZE:-10} \
  SWITCHBOARD_INBOX_TTL=${SWITCHBOARD_INBOX_TTL:-2m} \
  RUST_LOG=${RUST_LOG:-warn} "$BIN/switchboard" >"$OUT/$2.log" 2>&1 &
}
start_gateway "$PORT_A" gw-a
GW_A=$!
PIDS+=("$GW_A")
start_gateway "$PORT_B" gw-b
GW_B=$!
PIDS+=("$GW_B")
for port in "$PORT_A" "$PORT_B"; do
  for _ in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$port/readyz")" = 200 ] && break
    sleep 0.2
  done
done
echo "soak: redis :$RPORT (pid $REDIS), gateway A :$PORT_A (pid $GW_A), gateway B :$PORT_B (pid $GW_B), output in $OUT"

"$BIN/examples/swarm" --mode soak --secret "$SECRET" \
  --url "ws://127.0.0.1:$PORT_A/ws,ws://127.0.0.1:$PORT_B/ws" \
  --conns "$CONNS" --rooms "$ROOMS" --room soak --seconds "$DURATION" --rate "$RATE" \
  --dm-rate "$DM_RATE" --churn "$CHURN" --game-pairs "$GAME_PAIRS" --ranked "$RANKED" \
  --payload "$PAYLOAD" --connect-parallel "$CONNECT_PARALLEL" >"$OUT/swarm.log" 2>&1 &
SWARM=$!
PIDS+=("$SWARM")
T0=$(date +%s.%N)

TICKS=$(getconf CLK_TCK)
# One replica's figures: rss_kib fds threads conns outq subs rankq cpu_s
replica() {
  local pid=$1 port=$2 rss fds threads m cpu
  rss=$(awk '/^VmRSS/{print $2}' "/proc/$pid/status" 2>/dev/null || echo NA)
  # utime + stime (fields 14 and 15; the command name in field 2 has no spaces here).
  cpu=$(awk -v hz="$TICKS" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$pid/stat" 2>/dev/null || echo NA)
  threads=$(awk '/^Threads/{print $2}' "/proc/$pid/status" 2>/dev/null || echo NA)
  fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  m=$(curl -s --max-time 5 "127.0.0.1:$port/metrics" || true)
  echo "$rss $fds $threads $(echo "$m" | awk '
    /^switchboard_connections\{/ {c += $2}
    /^switchboard_outbound_queued_frames / {q = $2}
    /^switchboard_redis_subscribed_channels / {s = $2}
    /^switchboard_rank_queue_length / {r = $2}
    END {printf "%d %d %d %d", c, q, s, r}') $cpu"
}
rinfo() { redis-cli -p "$RPORT" info "$1" | tr -d '\r' | awk -F: -v k="$2" '$1 == k {print $2}'; }
swarm_field() { grep '^soak t=' "$OUT/swarm.log" | tail -1 | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k {print $2}'; }

CSV=$OUT/soak.csv
echo "t_s,a_rss_kib,a_fds,a_threads,a_conns,a_outq,a_channels,a_rankq,b_rss_kib,b_fds,b_threads,b_conns,b_outq,b_channels,b_rankq,redis_used_bytes,redis_rss_bytes,redis_keys,redis_clients,swarm_live,swarm_delivered,swarm_dms_received,swarm_games,swarm_ranked_games,swarm_errors,a_cpu_s,b_cpu_s,redis_cpu_s,redis_game_logs,redis_user_logs,redis_msgid_keys" >"$CSV"
n=0
# Samples at INTERVAL, 2*INTERVAL, ... while the load runs (the last one before DURATION).
while kill -0 "$SWARM" 2>/dev/null && [ $(((n + 1) * INTERVAL)) -lt "$DURATION" ]; do
  n=$((n + 1))
  due=$(awk -v t0="$T0" -v n="$n" -v i="$INTERVAL" 'BEGIN{printf "%.3f", t0 + n * i}')
  now=$(date +%s.%N)
  wait_s=$(awk -v d="$due" -v n="$now" 'BEGIN{w = d - n; if (w < 0) w = 0; printf "%.3f", w}')
  sleep "$wait_s"
  kill -0 "$SWARM" 2>/dev/null || break
  t=$(awk -v t0="$T0" -v now="$(date +%s.%N)" 'BEGIN{printf "%.1f", now - t0}')
  read -r ar af at ac aq as ak acpu <<<"$(replica "$GW_A" "$PORT_A")"
  read -r br bf bt bc bq bs bk bcpu <<<"$(replica "$GW_B" "$PORT_B")"
  rcpu=$(redis-cli -p "$RPORT" info cpu | tr -d '\r' | awk -F: '/^used_cpu_(sys|user):/{c += $2} END{printf "%.2f", c}')
  used=$(rinfo memory used_memory)
  rrss=$(rinfo memory used_memory_rss)
  keys=$(redis-cli -p "$RPORT" dbsize | tr -d '\r')
  clients=$(rinfo clients connected_clients)
  # Keys of a few kinds (KEYS inside Lua: a few ms per sample at these key counts).
  read -r glogs ulogs mids <<<"$(redis-cli -p "$RPORT" eval \
    "return {#redis.call('KEYS', ARGV[1]), #redis.call('KEYS', ARGV[2]), #redis.call('KEYS', ARGV[3])}" \
    0 'sb:{g:*}:log' 'sb:{u:*}:log' 'sb:{u:*}:mid:*' | tr -d '\r' | tr '\n' ' ')"
  echo "$t,$ar,$af,$at,$ac,$aq,$as,$ak,$br,$bf,$bt,$bc,$bq,$bs,$bk,$used,$rrss,$keys,$clients,$(swarm_field live),$(swarm_field delivered),$(swarm_field dms_received),$(swarm_field games),$(swarm_field ranked_games),$(swarm_field errors),$acpu,$bcpu,$rcpu,$glogs,$ulogs,$mids" >>"$CSV"
  printf 'soak t=%6ss  A: rss %6d KiB fds %5d conns %5d  B: rss %6d KiB fds %5d conns %5d  redis %6.1f MiB keys %s\n' \
    "$t" "$ar" "$af" "$ac" "$br" "$bf" "$bc" "$(awk -v u="$used" 'BEGIN{print u/1048576}')" "$keys"
done
# Redis keys by pattern (digits and hex ids folded to N) while the load still runs.
redis-cli -p "$RPORT" --scan | sed -E 's/[0-9a-f]{8,}/N/g; s/[0-9]+/N/g' \
  | sort | uniq -c | sort -rn >"$OUT/redis-keys.txt" || true
# Bytes per key (MEMORY USAGE) and time to live (PTTL) of up to 50 keys of the main kinds.
for pat in 'sb:{g:*}:log' 'sb:{g:*}:pos' 'sb:{u:*}:mid:*' 'sb:{u:u*}:log' 'sb:{r:*}:log'; do
  redis-cli -p "$RPORT" --scan --pattern "$pat" | head -50 | while read -r key; do
    echo "$(redis-cli -p "$RPORT" memory usage "$key") $(redis-cli -p "$RPORT" pttl "$key")"
  done | awk -v p="$pat" '{s += $1; t += $2; n++} END{if (n) printf "%s: mean MEMORY USAGE %.0f bytes, mean PTTL %.0f s, over %d keys\n", p, s / n, t / n / 1000, n}'
done >>"$OUT/redis-keys.txt" 2>/dev/null || true
wait "$SWARM" || echo "soak: swarm exited with $?" >&2
grep -E '^soak(:| t=)' "$OUT/swarm.log" | tail -3
SUMMARY=$(grep '^soak-summary ' "$OUT/swarm.log" | tail -1 | cut -d' ' -f2-)
[ -n "$SUMMARY" ] || SUMMARY='{}'
for name in gw-a gw-b; do
  errs=$(grep -c -E 'ERROR|panicked' "$OUT/$name.log" || true)
  [ "$errs" = 0 ] || echo "soak: $name logged $errs ERROR/panic lines (see $OUT/$name.log)" >&2
done

# Plotting needs matplotlib; it lives in a private venv.
PY=python3
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import matplotlib' 2>/dev/null; then
  python3 -m venv "$VENV" >/dev/null 2>&1 && "$VENV/bin/pip" install -q matplotlib >/dev/null 2>&1 \
    || echo "soak: could not set up matplotlib in $VENV; no plot" >&2
fi
[ -x "$VENV/bin/python" ] && PY=$VENV/bin/python

"$PY" - "$CSV" "$OUT/soak.png" "$WARMUP" "$SUMMARY" "$CONNS" "$DURATION" <<'PYEOF'
import csv, json, sys
path, png, warmup, swarm, conns, duration = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
rows = list(csv.DictReader(open(path)))
def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None
data = {k: [num(r[k]) for r in rows] for k in rows[0]} if rows else {}
t = data.get("t_s", [])
after = [i for i, x in enumerate(t) if x is not None and x >= warmup]
result = {"conns": conns, "duration_s": duration, "warmup_s": warmup, "samples": len(rows)}
def growth(col, scale=1.0):
    vals = data[col]
    base = [vals[i] for i in after[:3] if vals[i] is not None]
    last = [vals[i] for i in after[-3:] if vals[i] is not None]
    if len(after) < 6 or not base or not last:
        return None
    b, l = sum(base) / len(base) / scale, sum(last) / len(last) / scale
    tb = sum(t[i] for i in after[:3]) / 3
    tl = sum(t[i] for i in after[-3:]) / 3
    per_min = (l - b) / ((tl - tb) / 60) if tl > tb else 0.0
    return {"after_warmup": round(b, 2), "end": round(l, 2), "growth": round(l - b, 2),
            "growth_pct": round(100 * (l - b) / b, 2) if b else None,
            "per_min": round(per_min, 3)}
def cpu_pct(col):
    # Mean CPU use (percent of one core) between the first sample after warm-up and the last.
    if len(after) < 2 or data[col][after[0]] is None or data[col][after[-1]] is None:
        return None
    dt = t[after[-1]] - t[after[0]]
    return round(100 * (data[col][after[-1]] - data[col][after[0]]) / dt, 1) if dt > 0 else None
if rows:
    for side in ("a", "b"):
        result["replica_" + side] = {
            "rss_mib": growth(side + "_rss_kib", 1024),
            "fds": growth(side + "_fds"),
            "threads": growth(side + "_threads"),
            "connections": growth(side + "_conns"),
            "outbound_queued": growth(side + "_outq"),
            "peak_rss_mib": round(max(v for v in data[side + "_rss_kib"] if v is not None) / 1024, 1),
            "cpu_pct_after_warmup": cpu_pct(side + "_cpu_s"),
        }
    result["redis"] = {"used_memory_mib": growth("redis_used_bytes", 1048576),
                       "keys": growth("redis_keys"),
                       "game_log_keys": growth("redis_game_logs"),
                       "user_log_keys": growth("redis_user_logs"),
                       "msg_id_keys": growth("redis_msgid_keys"),
                       "cpu_pct_after_warmup": cpu_pct("redis_cpu_s"),
                       "peak_used_memory_mib": round(max(v for v in data["redis_used_bytes"] if v is not None) / 1048576, 2)}
try:
    result["swarm"] = json.loads(swarm)
except ValueError:
    result["swarm"] = None
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(3, 2, figsize=(12, 10), sharex=True)
    panels = [
        ("RSS (MiB)", [("a_rss_kib", 1024, "replica A"), ("b_rss_kib", 1024, "replica B")]),
        ("open file descriptors", [("a_fds", 1, "replica A"), ("b_fds", 1, "replica B")]),
        ("connections (= session tasks)", [("a_conns", 1, "replica A"), ("b_conns", 1, "replica B"), ("swarm_live", 1, "swarm: logged in")]),
        ("Redis used_memory (MiB)", [("redis_used_bytes", 1048576, "used_memory"), ("redis_rss_bytes", 1048576, "used_memory_rss")]),
        ("outbound queued frames", [("a_outq", 1, "replica A"), ("b_outq", 1, "replica B")]),
        ("Redis keys (thousands)", [("redis_keys", 1000, "all keys"), ("redis_game_logs", 1000, "game logs ({g:*}:log)"), ("redis_user_logs", 1000, "DM/ranked inboxes ({u:*}:log)"), ("redis_msgid_keys", 1000, "msg-id keys ({u:*}:mid:*)")]),
    ]
    for ax, (title, series) in zip(axes.flat, panels):
        for col, scale, label in series:
            ys = [None if v is None else v / scale for v in data[col]]
            ax.plot(t, ys, label=label, linewidth=1.2)
        ax.axvline(warmup, color="grey", linestyle="--", linewidth=0.8)
        ax.set_title(title, fontsize=10)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    for ax in axes[-1]:
        ax.set_xlabel("seconds since the swarm started (dashed: end of warm-up)")
    fig.suptitle(f"Switchboard soak: {conns} connections over 2 replicas, {duration} s")
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    result["plot"] = png
except ImportError:
    result["plot"] = None
print("soak-result " + json.dumps(result, separators=(",", ":")))
PYEOF
