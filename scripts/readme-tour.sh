#!/usr/bin/env bash
# Runs the README's "A 60-second tour" as written and checks the output it shows.
#   scripts/readme-tour.sh [path/to/switchboard]
# The blocks marked `<!-- tour: NAME -->` are run in order; `cargo run --release --`
# becomes the given binary (so the tour does not build twice), and the ports 8080 and 7070
# become free ones (so the check never collides with anything): written ones are
# rewritten, and the defaults move through SWITCHBOARD_LISTEN (the gateway) and
# SWITCHBOARD_URL (`switchboard chat`). Nothing else is changed.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/release/switchboard}"
case "$bin" in /*) ;; *) bin="$PWD/$bin" ;; esac
[[ -x "$bin" ]] || { echo "readme-tour: no binary at $bin" >&2; exit 2; }

work="$(mktemp -d)"
pids=()
cleanup() {
  # Each background block runs in its own process group: stop the whole group.
  for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http_port="$(free_port)"
tcp_port="$(free_port)"
redis_port="$(free_port)"
replica_a="$(free_port)"
replica_b="$(free_port)"
export SWITCHBOARD_LISTEN="127.0.0.1:$http_port" SWITCHBOARD_URL="ws://127.0.0.1:$http_port/ws"

# The fenced block after `<!-- tour: NAME -->`, with the binary and ports substituted.
block() {
  awk -v name="$1" '
    $0 == "<!-- tour: " name " -->" { found = 1; next }
    found && /^```/ { if (inside) exit; inside = 1; next }
    inside { print }
  ' README.md | sed -e "s#cargo run --release --#\"$bin\"#g" -e "s#cargo run --release#\"$bin\"#g" \
                    -e "s#8080#$http_port#g" -e "s#7070#$tcp_port#g" \
                    -e "s#6379#$redis_port#g" -e "s#8081#$replica_a#g" -e "s#8082#$replica_b#g"
}

passed=0
failed=0
check() {
  if [[ "$2" == ok ]]; then
    echo "PASS $1"; passed=$((passed + 1))
  else
    echo "FAIL $1"; failed=$((failed + 1))
  fi
}

for name in server alice bob bob-output backend alice-output replicas replicas-chat; do
  block "$name" > "$work/$name"
  [[ -s "$work/$name" ]] || { echo "readme-tour: README has no block '$name'" >&2; exit 1; }
done

# Terminal 1: the gateway, until the tour is over.
setsid bash "$work/server" > "$work/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$http_port/healthz" > /dev/null && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$http_port/healthz" > /dev/null \
  && check "gateway from the README answers" ok || check "gateway from the README answers" no

# Terminal 2: Alice, interactive; her input stays open while the others act.
setsid bash -c "sleep 4 | bash '$work/alice'" > "$work/alice.out" 2> "$work/alice.err" &
pids+=($!)
for _ in $(seq 1 50); do grep -q "you joined lobby" "$work/alice.out" 2>/dev/null && break; sleep 0.1; done

# Terminal 3: Bob, scripted; his transcript must be exactly the one the README shows.
if timeout 20 bash "$work/bob" > "$work/bob.out" 2> "$work/bob.err" \
   && diff -u "$work/bob-output" "$work/bob.out"; then
  check "Bob's transcript is the README's" ok
else
  check "Bob's transcript is the README's (stderr: $(tr '\n' ' ' < "$work/bob.err"))" no
fi

# The backend push.
if timeout 10 bash "$work/backend" > "$work/backend.out" 2>&1 \
   && grep -q '"seq":' "$work/backend.out" && grep -q '"users":' "$work/backend.out"; then
  check "backend API calls answer" ok
else
  check "backend API calls answer ($(tr '\n' ' ' < "$work/backend.out"))" no
fi

# Alice's terminal shows the README's lines (without the times, which differ).
sleep 1
missing=0
while IFS= read -r line; do
  want="${line#* }"
  grep -qF -- "$want" "$work/alice.out" || { echo "  Alice is missing: $want"; missing=1; }
done < "$work/alice-output"
[[ $missing == 0 ]] && check "Alice's terminal shows the README's lines" ok \
  || { cat "$work/alice.out" "$work/alice.err"; check "Alice's terminal shows the README's lines" no; }

# "Several replicas": two gateways on one Redis, tokens from `switchboard token`, and a
# message from one replica's client reaching the other's.
setsid bash "$work/replicas" > "$work/replicas.log" 2>&1 &
pids+=($!)
ready=no
for _ in $(seq 1 100); do
  if curl -sf "http://127.0.0.1:$replica_a/readyz" > /dev/null \
     && curl -sf "http://127.0.0.1:$replica_b/readyz" > /dev/null; then
    ready=ok; break
  fi
  sleep 0.1
done
check "both replicas from the README become ready" "$ready"
if timeout 20 bash "$work/replicas-chat" > "$work/replicas-chat.out" 2>&1 \
   && grep -qF "[lobby] Alice: hello from $replica_a" "$work/replicas-chat.out"; then
  check "a message crosses the README's replicas" ok
else
  cat "$work/replicas-chat.out" "$work/replicas.log"
  check "a message crosses the README's replicas" no
fi

echo "readme-tour: $passed passed, $failed failed"
[[ $failed == 0 ]]
