#!/usr/bin/env bash
# Browser end-to-end tests of the web app (web/), plus unit tests of its game rules.
#   e2e/run.sh [path/to/switchboard]
# The binary is argument 1, else $SWITCHBOARD_BIN, else target/release/switchboard. It must
# embed the current web/ files (the test serves the app from the binary; set
# SWITCHBOARD_E2E_WEB_DIR=web to serve web/ from disk while developing the app).
# SWITCHBOARD_E2E_SCREENSHOT=1 also refreshes docs/screenshot.png from the run.
# Installs what is missing: chromium (apt), redis-server (apt), playwright-core (npm ci).
# Prints a final "N passed, M failed" line and exits non-zero on any failure.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"

bin="${1:-${SWITCHBOARD_BIN:-$repo/target/release/switchboard}}"
case "$bin" in /*) ;; *) bin="$PWD/$bin" ;; esac
if [ ! -x "$bin" ]; then
  echo "e2e/run.sh: gateway binary not found or not executable: $bin" >&2
  echo "0 passed, 1 failed"
  exit 2
fi

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "${apt_updated:-}" ]; then
    apt-get update -qq
    apt_updated=1
  fi
  apt-get install -y -qq "$@" >/dev/null
}
if [ ! -x /usr/bin/chromium ]; then
  echo "installing chromium"
  apt_install chromium
fi
if ! command -v redis-server >/dev/null 2>&1; then
  echo "installing redis-server"
  apt_install redis-server
fi
if ! command -v node >/dev/null 2>&1; then
  echo "installing nodejs and npm"
  apt_install nodejs npm
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  echo "e2e/run.sh: node >= 20 required, found $(node --version)" >&2
  echo "0 passed, 1 failed"
  exit 2
fi
if [ ! -f "$here/node_modules/playwright-core/package.json" ]; then
  (cd "$here" && npm ci --no-audit --no-fund)
fi

cd "$repo"
start=$(date +%s)

# 1. Unit tests of web/tictactoe.js (node --test, TAP to count the results).
unit_out="$(node --test --test-reporter=tap e2e/tictactoe.test.mjs 2>&1)"
unit_rc=$?
echo "$unit_out" | grep -E '^(not )?ok |^# (pass|fail)' || true
unit_pass="$(echo "$unit_out" | sed -n 's/^# pass \([0-9]*\)$/\1/p' | tail -1)"
unit_fail="$(echo "$unit_out" | sed -n 's/^# fail \([0-9]*\)$/\1/p' | tail -1)"
unit_pass="${unit_pass:-0}"
unit_fail="${unit_fail:-0}"
if [ "$unit_rc" -ne 0 ] && [ "$unit_fail" -eq 0 ]; then
  echo "$unit_out" | tail -20
  unit_fail=1
fi

# 2. The browser end-to-end scenarios.
e2e_log="$(mktemp)"
node e2e/app.e2e.mjs "$bin" 2>&1 | tee "$e2e_log"
e2e_rc=${PIPESTATUS[0]}
summary="$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$e2e_log" | tail -1)"
rm -f "$e2e_log"
e2e_pass="$(echo "$summary" | sed -n 's/^\([0-9]*\) passed.*/\1/p')"
e2e_fail="$(echo "$summary" | sed -n 's/^[0-9]* passed, \([0-9]*\) failed.*/\1/p')"
e2e_skip="$(echo "$summary" | sed -n 's/.*, \([0-9]*\) skipped.*/\1/p')"
e2e_pass="${e2e_pass:-0}"
e2e_fail="${e2e_fail:-0}"
e2e_skip="${e2e_skip:-0}"
if [ "$e2e_rc" -ne 0 ] && [ "$e2e_fail" -eq 0 ]; then
  e2e_fail=1
fi

passed=$((unit_pass + e2e_pass))
failed=$((unit_fail + e2e_fail + e2e_skip))
echo "# web app: unit tests ${unit_pass} passed, ${unit_fail} failed; browser e2e ${e2e_pass} passed, ${e2e_fail} failed, ${e2e_skip} skipped; $(( $(date +%s) - start )) s"
echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
