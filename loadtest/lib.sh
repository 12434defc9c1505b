# Shared by the load-test scripts (source it): free loopback ports, stopping what a
# script started, and the kernel settings and limits many connections need.

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
# (Kernel settings a run changed are put back after: restore_sysctls below.)
trap 'cleanup; restore_sysctls' EXIT
trap 'exit 130' INT TERM

# Kernel settings changed by this run (name=old value), put back on exit by restore_sysctls.
CHANGED_SYSCTLS=()
restore_sysctls() {
  local kv
  for kv in "${CHANGED_SYSCTLS[@]}"; do
    sysctl -q -w "${kv%%=*}=${kv#*=}" >/dev/null 2>&1 \
      && echo "kernel: restored ${kv%%=*} = ${kv#*=}" >&2
  done
}

# The open-file limit of this shell (and what it starts) up to NEED: the soft limit to
# the hard one, and, when the hard one is short and we may (root, capped by fs.nr_open),
# the hard one too. Says what it changed; prints nothing on stdout.
raise_nofile() {
  local need=$1 hard nr_open
  hard=$(ulimit -Hn) nr_open=$(cat /proc/sys/fs/nr_open)
  if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
    local want=$((need > nr_open ? nr_open : need))
    if ulimit -Hn "$want" 2>/dev/null; then
      echo "limits: raised the hard open-file limit $hard -> $want (need $need, fs.nr_open $nr_open)" >&2
    else
      echo "limits: hard open-file limit $hard < $need and cannot be raised: that needs root with CAP_SYS_RESOURCE" >&2
    fi
  fi
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}

# One kernel setting against what a run needs: prints "name = value (need ...) ok|SHORT"
# to stderr, and when SHORT and APPLY_SYSCTL=1 (the default for root) sets NEW and
# remembers the old value for restore_sysctls. CHECK is an awk condition on the value's
# fields ($1, $2, ...) that holds when the setting is enough.
kernel_setting() {
  local name=$1 check=$2 need=$3 new=${4:-} path val
  path=/proc/sys/${name//.//}
  if [ ! -r "$path" ]; then
    echo "kernel: $name absent (fine: $need)" >&2
    return
  fi
  val=$(tr '\t' ' ' <"$path")
  if echo "$val" | awk "{exit !($check)}"; then
    echo "kernel: $name = $val (need $need) ok" >&2
  elif [ -n "$new" ] && [ "${APPLY_SYSCTL:-$([ "$(id -u)" = 0 ] && echo 1)}" = 1 ] \
    && sysctl -q -w "$name=$new" >/dev/null 2>&1; then
    CHANGED_SYSCTLS+=("$name=$val")
    echo "kernel: $name = $val (need $need) SHORT: set to $new for this run" >&2
  else
    echo "kernel: $name = $val (need $need) SHORT${new:+: as root, sysctl -w $name=\"$new\"}" >&2
  fi
}

# What N connections over loopback from one client process to one gateway, spread over
# ADDRS destination addresses, need from the kernel (both ends are on this host: 2N
# sockets). PENDING is the gateway's SWITCHBOARD_MAX_PENDING_LOGINS, PARALLEL the
# client's connects in flight, PER (default N) the connections one gateway process holds.
kernel_check() {
  local n=$1 addrs=$2 pending=$3 parallel=$4 per=${5:-$1} gw_fds per_addr
  gw_fds=$((per + pending + 256))
  per_addr=$(((n + addrs - 1) / addrs))
  kernel_setting fs.nr_open "\$1 >= $gw_fds" ">= $gw_fds open files in the gateway" "$gw_fds"
  kernel_setting fs.file-max "\$1 >= $((2 * n + 20000))" \
    ">= $((2 * n + 20000)): both ends' sockets + the rest of the host" "$((2 * n + 20000))"
  kernel_setting net.ipv4.ip_local_port_range "\$2 - \$1 + 1 >= $per_addr" \
    ">= $per_addr ephemeral ports per destination address, $addrs address(es)" "1024 65535"
  kernel_setting net.core.somaxconn "\$1 >= $parallel" ">= $parallel connects in flight" 4096
  kernel_setting net.ipv4.tcp_max_syn_backlog "\$1 >= $parallel" ">= $parallel connects in flight" 4096
  if [ -r /proc/sys/net/netfilter/nf_conntrack_count ]; then
    kernel_setting net.netfilter.nf_conntrack_max "\$1 >= $((n + 10000))" \
      ">= $((n + 10000)) if conntrack tracks loopback (count now $(cat /proc/sys/net/netfilter/nf_conntrack_count))" \
      "$((n + 10000))"
  fi
  # Idle sockets hold no buffer pages, so tcp_mem (pages, min/pressure/max over all TCP
  # sockets) only binds once clients stop reading; shown for the record.
  echo "kernel: net.ipv4.tcp_mem = $(tr '\t' ' ' </proc/sys/net/ipv4/tcp_mem) pages; tcp_rmem = $(tr '\t' ' ' </proc/sys/net/ipv4/tcp_rmem); tcp_wmem = $(tr '\t' ' ' </proc/sys/net/ipv4/tcp_wmem)" >&2
}

# Kernel memory for sockets: "TCP sockets in use, TCP buffer pages, slab KiB".
kernel_mem() {
  awk '/^TCP:/{for (i = 2; i < NF; i += 2) t[$i] = $(i + 1)} END{printf "%d %d ", t["inuse"], t["mem"]}' /proc/net/sockstat
  awk '/^Slab:/{print $2}' /proc/meminfo
}
