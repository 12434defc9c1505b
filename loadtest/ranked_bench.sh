#!/usr/bin/env bash
# The ranked matcher's Redis cost at N queued players (default 10,000), one command:
# builds the `ranked_bench` example (loadtest/ranked_bench.rs), starts a private
# redis-server (free port, no persistence, SLOWLOG recording every command), fills the
# queue through the gateway's own Redis backend (same keys and scripts) and calls
# `take_matches` as a replica's matcher tick does, REPS times per phase:
#   idle_unchanged  nobody settled, nothing changed since the last call: nothing to take
#   idle_changed    the same, but one player joined and one left before each call
#   take            everyone settled: about N/2 pairs taken in one tick
#   steady          the gateway's rules, simulated 200 ms ticks, joins keeping ~N queued
# For each: the Redis time of the call (sum of its SLOWLOG durations, median and max;
# and the CPU time Redis used meanwhile, from INFO cpu, which a busy machine inflates less),
# the replica's wall time for it (median) and the commands it ran. Prints one line:
#   result {"scenario":"ranked",...,"figures":{...}}
# Settings (env): NO_BUILD=1 (use the binary already built), BIN=<path> (another build,
#   e.g. of an older commit; implies nothing about NO_BUILD), PROFILE=release|debug
#   (release), OUT=/tmp/bench-ranked-<time> (redis log).
# Example: loadtest/ranked_bench.sh 10000 5
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=loadtest/lib.sh
. loadtest/lib.sh
exec 3>&1 1>&2

N=${1:-10000}
REPS=${2:-5}
PROFILE=${PROFILE:-release}
OUT=${OUT:-/tmp/bench-ranked-$(date -u +%Y%m%dT%H%M%S)}
mkdir -p "$OUT"
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/$PROFILE/examples/ranked_bench}
if [ -z "${NO_BUILD:-}" ]; then
  if [ "$PROFILE" = release ]; then
    cargo build --release --quiet --example ranked_bench
  else
    cargo build --quiet --example ranked_bench
  fi
fi

RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no \
  --slowlog-log-slower-than 0 --slowlog-max-len 100000 --logfile "$OUT/redis.log" &
PIDS+=($!)
for _ in $(seq 1 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || COMMIT="$COMMIT-dirty"
MACHINE="$(nproc) cores, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo), \
load $(cut -d' ' -f1 /proc/loadavg) at start, $(redis-server --version | cut -d' ' -f3)"

LINE=$("$BIN" "redis://127.0.0.1:$RPORT" "$N" "$REPS" | grep '^ranked-bench ')
python3 - "${LINE#ranked-bench }" "$COMMIT" "$MACHINE" "$PROFILE" "$BIN" >&3 <<'PY'
import datetime, json, sys
figures, commit, machine, profile, binary = sys.argv[1:]
print("result " + json.dumps({
    "scenario": "ranked", "commit": commit, "profile": profile, "bin": binary,
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "machine": machine, "figures": json.loads(figures)}, separators=(",", ":")))
PY
