#!/usr/bin/env bash
# Runs the JS client tests against a real gateway binary.
#   clients/js/run-tests.sh [path/to/switchboard]
# The binary is argument 1, else $SWITCHBOARD_BIN, else ../../target/release/switchboard
# (relative to clients/js). Needs node >= 20, npm, and redis-server on the PATH.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

bin="${1:-${SWITCHBOARD_BIN:-$here/../../target/release/switchboard}}"
case "$bin" in /*) ;; *) bin="$PWD/$bin" ;; esac
if [ ! -x "$bin" ]; then
  echo "run-tests.sh: gateway binary not found or not executable: $bin" >&2
  exit 2
fi
export SWITCHBOARD_BIN="$bin"

cd "$here"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  echo "run-tests.sh: node >= 20 required, found $(node --version)" >&2
  exit 2
fi
if ! command -v redis-server >/dev/null 2>&1; then
  echo "run-tests.sh: redis-server is needed on the PATH (apt-get install redis-server)" >&2
  exit 2
fi
if [ ! -f node_modules/ws/package.json ]; then
  npm ci --no-audit --no-fund
fi
echo "JS client tests against $SWITCHBOARD_BIN (node $(node --version))"
exec node --test --test-reporter=spec test/
