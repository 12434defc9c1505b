# Shared by the load-test scripts (source it): free loopback ports and stopping what a
# script started.

# A TCP port free on 127.0.0.1 right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Started processes (append with PIDS+=($!)), stopped by pid in reverse order on exit
# (the load, then the gateways, then Redis), also on failure or Ctrl-C.
PIDS=()
cleanup() {
  local i pid
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid=${PIDS[i]}
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
