#!/usr/bin/env bash
# How cost grows along one axis at a time, with loadtest/run.sh (two replicas, one Redis):
#   members:      fanout N 50 10 for N = 100 250 500 1000 2000 (one room, 50 msg/s)
#   message size: fanout 200 100 10 with PAYLOAD = 64 1024 8192 bytes
#   rooms:        chat 1000 20 with ROOMS = 1 10 100 (the same 1,000 clients spread out)
#   replicas:     fanout 600 50 10 with REPLICAS = 1 2 3 (the same members spread out)
# Writes every `result` line to $OUT/axes.jsonl and renders $OUT/axes.png
# (loadtest/axes.py, matplotlib from the soak venv $VENV).
# Usage: loadtest/axes.sh   (env: NO_BUILD=1, CARGO_TARGET_DIR, OUT=/tmp/axes-<time>, VENV)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/axes-$(date -u +%Y%m%dT%H%M%S)}
VENV=${VENV:-/tmp/soak-venv}
mkdir -p "$OUT"
[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet --bin switchboard --example swarm
export NO_BUILD=1
run() { loadtest/run.sh "$@" 2>>"$OUT/runs.log" | tail -1 | sed 's/^result //' >>"$OUT/axes.jsonl"; }
: >"$OUT/axes.jsonl"
for n in 100 250 500 1000 2000; do run fanout "$n" 50 10; done
for p in 64 1024 8192; do PAYLOAD=$p run fanout 200 100 10; done
for r in 1 10 100; do ROOMS=$r run chat 1000 20; done
for g in 1 2 3; do REPLICAS=$g run fanout 600 50 10; done
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" && "$VENV/bin/pip" install -q matplotlib
fi
"$VENV/bin/python" loadtest/axes.py "$OUT/axes.jsonl" "$OUT/axes.png"
echo "results: $OUT/axes.jsonl, plot: $OUT/axes.png"
