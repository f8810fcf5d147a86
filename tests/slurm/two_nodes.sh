#!/usr/bin/env bash
# A two-node SLURM cluster on one machine, for testing training across nodes for real.
#
#   tests/slurm/two_nodes.sh start          bring up munge + slurmctld (host "ctl") and two slurmd (n1, n2)
#   tests/slurm/two_nodes.sh run CMD ...    run a client command (sbatch, squeue, snakemake) in the cluster
#   tests/slurm/two_nodes.sh kill-node NODE stop NODE's slurmd and every process of its jobs (a node failure)
#   tests/slurm/two_nodes.sh revive-node NODE  start NODE's slurmd again
#   tests/slurm/two_nodes.sh stop           stop what start started (by PID); the namespaces go with it
#
# Each node is its own network and UTS namespace (own address and hostname) on a bridge in the
# controller's namespace, one /24 with no route out. All of it lives in a private mount namespace
# whose /etc/slurm, /etc/hosts, /etc/munge, /var/lib/munge and /run are this cluster's own, so the
# host's network and files (and tests/slurm/cluster.sh's one-node cluster) are left as they were.
# Root only; needs util-linux (unshare, nsenter), iproute2 and Debian's SLURM packages.
set -euo pipefail
# shellcheck source=tests/slurm/common.sh
. "$(dirname "$0")/common.sh"

STATE=${SLURM_TWO_NODES_STATE:-/var/lib/realfake-slurm-two-nodes}
NET=10.87.0           # the cluster's /24: ctl .1, n1 .11, n2 .12
NODES=(n1 n2)

need_root() { [ "$(id -u)" = 0 ] || { echo "two_nodes.sh: must run as root" >&2; exit 2; }; }
pid_of() { cat "$STATE/$1.pid" 2>/dev/null || true; }
alive() { local pid; pid=$(pid_of "$1"); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }
# enter a holder's namespaces: mount (shared by all), network and hostname (its own)
in_ns() { local who=$1; shift; nsenter -t "$(pid_of "$who")" -m -n -u -- "$@"; }

write_files() {
  mkdir -p "$STATE"/{etc/slurm,etc/munge,munge-lib,munge-log,ctld,spool/n1,spool/n2}
  local cpus mem
  cpus=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)  # nproc honours OMP_NUM_THREADS
  mem=$(( ($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024) / 2 ))
  [ -e /dev/fakegpu0 ] || mknod /dev/fakegpu0 c 1 3
  printf '127.0.0.1 localhost\n%s.1 ctl\n%s.11 n1\n%s.12 n2\n' "$NET" "$NET" "$NET" > "$STATE/etc/hosts"
  # SlurmdTimeout 20 s (default 300): a dead node is noticed in a test's time
  policy_conf "$STATE" > "$STATE/etc/slurm/slurm.conf"
  cat >> "$STATE/etc/slurm/slurm.conf" <<CONF
ClusterName=realfake2
SlurmctldHost=ctl($NET.1)
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool/%n
SlurmctldPidFile=$STATE/slurmctld.daemon.pid
SlurmdPidFile=$STATE/slurmd.%n.daemon.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.%n.log
SlurmdTimeout=20
NodeName=n1 NodeAddr=$NET.11 NodeHostname=n1 CPUs=$cpus RealMemory=$mem Gres=gpu:fake:1 State=UNKNOWN
NodeName=n2 NodeAddr=$NET.12 NodeHostname=n2 CPUs=$cpus RealMemory=$mem Gres=gpu:fake:1 State=UNKNOWN
PartitionName=cpu Nodes=n[1-2] Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=n[1-2] MaxTime=${GPU_MAX_TIME:-INFINITE} State=UP
CONF
  echo "NodeName=n[1-2] Name=gpu Type=fake File=/dev/fakegpu0" > "$STATE/etc/slurm/gres.conf"
  [ -s "$STATE/etc/munge/munge.key" ] || dd if=/dev/urandom bs=1 count=1024 of="$STATE/etc/munge/munge.key" 2>/dev/null
  chown -R munge:munge "$STATE"/{etc/munge,munge-lib,munge-log}
  chmod 0700 "$STATE/etc/munge"
  chmod 0400 "$STATE/etc/munge/munge.key"
}

# Holders: sleeping processes that keep the namespaces alive; their PIDs name the namespaces.
# (Their stdio is /dev/null: a holder on a caller's pipe would keep the caller waiting.)
start_namespaces() {
  unshare --mount --propagation private sleep infinity </dev/null >/dev/null 2>&1 &
  echo $! > "$STATE/mnt.pid"
  sleep 0.1
  # /etc/slurm may not exist on the host: create it (and remove it on stop) as a mount point
  [ -d /etc/slurm ] || { mkdir /etc/slurm; touch "$STATE/created-etc-slurm"; }
  nsenter -t "$(pid_of mnt)" -m -- sh -ec "
    mount --bind $STATE/etc/slurm /etc/slurm
    mount --bind $STATE/etc/hosts /etc/hosts
    mount --bind $STATE/etc/munge /etc/munge
    mount --bind $STATE/munge-lib /var/lib/munge
    mount --bind $STATE/munge-log /var/log/munge
    mount -t tmpfs tmpfs /run
    mkdir -p /run/munge && chown munge:munge /run/munge"
  for host in ctl "${NODES[@]}"; do
    nsenter -t "$(pid_of mnt)" -m -- unshare --net --uts sh -c "hostname $host; exec sleep infinity" </dev/null >/dev/null 2>&1 &
    echo $! > "$STATE/$host.pid"
  done
  sleep 0.2
  local ctl_net=/proc/$(pid_of ctl)/ns/net
  nsenter --net="$ctl_net" -- sh -ec "
    ip link set lo up
    ip link add br0 type bridge
    ip addr add $NET.1/24 dev br0
    ip link set br0 up"
  local i=10
  for node in "${NODES[@]}"; do
    i=$((i + 1))
    nsenter --net="$ctl_net" -- ip link add "veth-$node" type veth peer name eth0 netns "$(pid_of "$node")"
    nsenter --net="$ctl_net" -- ip link set "veth-$node" master br0 up
    nsenter --net="/proc/$(pid_of "$node")/ns/net" -- sh -ec "
      ip link set lo up
      ip addr add $NET.$i/24 dev eth0
      ip link set eth0 up"
  done
}

start_daemons() {
  in_ns ctl runuser -u munge -- /usr/sbin/munged
  sleep 0.3
  in_ns ctl cat /run/munge/munged.pid > "$STATE/munged.pid"
  in_ns ctl /usr/sbin/slurmctld -c  # forgets an earlier run's jobs, as cluster.sh's
  wait_for_pidfile slurmctld.daemon "$STATE/slurmctld.log"
  for node in "${NODES[@]}"; do start_slurmd "$node"; done
}

wait_for_pidfile() {  # name (under $STATE), log
  for _ in $(seq 50); do
    [ -s "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null && return
    sleep 0.1
  done
  echo "two_nodes.sh: $1 did not start; the end of $2:" >&2
  tail -5 "$2" >&2
  exit 1
}

start_slurmd() {
  in_ns "$1" /usr/sbin/slurmd -N "$1"
  wait_for_pidfile "slurmd.$1.daemon" "$STATE/slurmd.$1.log"
}

wait_idle() {
  local state
  for _ in $(seq 60); do
    state=$(in_ns ctl timeout 5 sinfo -h -p cpu -o '%T %D' 2>/dev/null | tr '\n' ' ' || true)
    [ "$state" = "idle 2 " ] && return 0
    in_ns ctl scontrol update nodename=n[1-2] state=resume >/dev/null 2>&1 || true
    sleep 0.5
  done
  echo "two_nodes.sh: nodes did not become idle (sinfo: ${state:-none}); see $STATE/slurmd.*.log" >&2
  return 1
}

# Every process in a node's network namespace: its slurmd, slurmstepd and job tasks.
processes_on() {
  local net pid
  net=$(readlink "/proc/$(pid_of "$1")/ns/net")
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    [ "$pid" = "$(pid_of "$1")" ] && continue
    [ "$(readlink "/proc/$pid/ns/net" 2>/dev/null)" = "$net" ] && echo "$pid"
  done
  return 0
}

kill_node() {
  # shellcheck disable=SC2046
  kill -9 $(processes_on "$1") 2>/dev/null || true
  rm -f "$STATE/slurmd.$1.daemon.pid"
}

stop() {
  for node in "${NODES[@]}"; do [ -s "$STATE/${node}.pid" ] && kill_node "$node"; done
  for name in slurmctld.daemon munged; do
    alive "$name" && kill "$(pid_of "$name")" 2>/dev/null
    for _ in $(seq 50); do alive "$name" || break; sleep 0.1; done
    rm -f "$STATE/$name.pid"
  done
  for holder in "${NODES[@]}" ctl mnt; do
    alive "$holder" && kill "$(pid_of "$holder")"
    rm -f "$STATE/$holder.pid"
  done
  [ -e "$STATE/created-etc-slurm" ] && { rmdir /etc/slurm 2>/dev/null || true; rm -f "$STATE/created-etc-slurm"; }
  return 0
}

case "${1:-}" in
  start)
    need_root
    install_packages
    alive mnt && { echo "two_nodes.sh: already running (stop it first)" >&2; exit 1; }
    rm -rf "$STATE/ctld" "$STATE/spool"   # a fresh controller: no jobs from an earlier run
    write_files
    start_namespaces
    start_daemons
    wait_idle
    in_ns ctl sinfo -N -o '%N %P %T %G'
    ;;
  run) need_root; shift; in_ns ctl "$@" ;;
  kill-node) need_root; kill_node "$2" ;;
  revive-node) need_root; start_slurmd "$2" ;;
  stop) need_root; stop ;;
  *) echo "usage: $0 start|run CMD...|kill-node NODE|revive-node NODE|stop" >&2; exit 2 ;;
esac
