#!/usr/bin/env bash
# Bounded fuzz pass over the frame decoder and a live gateway (issue 12): fresh random
# cases for SECONDS (default 60), proptest-based so it runs on stable with no extra
# tools. A failing input is shrunk, saved under tests/corpus/ (commit it: every
# `cargo test` replays the corpus) and fails the run.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
SWITCHBOARD_FUZZ_SECS="$secs" cargo test --test it hostile::fuzz::fuzz_long_run \
  -- --ignored --exact --nocapture
