#!/usr/bin/env bash
# A single-node SLURM cluster on localhost, for testing the SLURM profile for real.
#
#   tests/slurm/cluster.sh start   install (Debian packages) and start munge, slurmctld, slurmd
#   tests/slurm/cluster.sh stop    stop the daemons this script started (by their PIDs)
#   tests/slurm/cluster.sh status
#
# Never touches a SLURM it did not set up: start refuses (exit 3, before installing or writing
# anything) where slurm.conf or gres.conf exists without this script's first line, where a
# slurmctld, slurmd or slurmdbd it did not start is running, where this is a configless node
# (/run/slurm/conf) or SLURM_CONF points elsewhere; stop deletes only the files carrying that line.
#
# Root only, idempotent, no systemd. The node declares FAKE_GPUS fake GPUs as GRES (character
# devices like /dev/null), so jobs asking for GPUs are scheduled and accounted as on a real
# GPU node. Without slurmdbd there is no sacct: jobs are recorded by jobcomp/filetxt in
# $STATE/jobcomp.log and kept visible to squeue for an hour (MinJobAge).
set -euo pipefail
# shellcheck source=tests/slurm/common.sh
. "$(dirname "$0")/common.sh"

STATE=${SLURM_TEST_STATE:-/var/lib/realfake-slurm}
FAKE_GPUS=${FAKE_GPUS:-2}
HOST=$(hostname -s)
# Clients must find the config in /etc/slurm: the plugin's in-job srun drops SLURM_CONF.
# SLURM_TEST_ETC moves it, for tests/test_slurm_safety.py only (clients would not find it there).
ETC=${SLURM_TEST_ETC:-/etc/slurm}
CONF=$ETC/slurm.conf
GRES=$ETC/gres.conf
MARKER="# written by realfake tests/slurm/cluster.sh"
FOREIGN=3   # start's exit code where the machine has its own SLURM (tests/test_slurm.py skips on it)
CALLER_SLURM_CONF=${SLURM_CONF:-}
[ "$ETC" = /etc/slurm ] || export SLURM_CONF=$CONF

need_root() { [ "$(id -u)" = 0 ] || { echo "cluster.sh: must run as root" >&2; exit 2; }; }
marked() { [ "$(head -n1 "$1" 2>/dev/null)" = "$MARKER" ]; }
ours() { local name; for name in slurmctld slurmd; do [ "$(cat "$STATE/$name.pid" 2>/dev/null)" = "$1" ] && return 0; done; return 1; }

# Why starting here would touch this machine's own SLURM (nothing if it would not).
foreign_slurm() {
  local f pid comm net
  for f in "$CONF" "$GRES"; do
    if { [ -e "$f" ] || [ -L "$f" ]; } && ! marked "$f"; then
      echo "this machine has its own SLURM configuration at $f (not written by tests/slurm/cluster.sh): the SLURM tests would overwrite it"
      return
    fi
  done
  if [ -n "$CALLER_SLURM_CONF" ] && [ "$CALLER_SLURM_CONF" != "$CONF" ]; then
    echo "SLURM_CONF is set to $CALLER_SLURM_CONF: the SLURM tests' clients would use that cluster, not the test cluster's $CONF"
    return
  fi
  if [ -e /run/slurm/conf ]; then
    echo "this machine is a node of a configless SLURM cluster (/run/slurm/conf): a slurm.conf in $ETC would take over its clients"
    return
  fi
  # daemons in this network namespace (they would hold SLURM's ports; two_nodes.sh's have their own)
  net=$(readlink /proc/$$/ns/net)
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
    case "$comm" in slurmctld|slurmd|slurmdbd) ;; *) continue ;; esac
    [ "$(readlink "/proc/$pid/ns/net" 2>/dev/null)" = "$net" ] || continue
    ours "$pid" && continue
    echo "this machine runs a $comm (PID $pid) not started by tests/slurm/cluster.sh: the SLURM tests would take over its configuration"
    return
  done
  return 0
}

refuse_foreign() {
  local why
  why=$(foreign_slurm)
  [ -z "$why" ] && return
  echo "cluster.sh: not started: $why" >&2
  exit "$FOREIGN"
}

write_config() {
  mkdir -p "$ETC" "$STATE"/{spool,ctld} /var/log/slurm /run/munge
  local cpus mem
  cpus=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)  # nproc honours OMP_NUM_THREADS
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
  for i in $(seq 0 $((FAKE_GPUS - 1))); do
    [ -e /dev/fakegpu$i ] || mknod /dev/fakegpu$i c 1 3
  done
  { echo "$MARKER"; policy_conf "$STATE"; } > "$CONF"
  cat >> "$CONF" <<CONF
ClusterName=realfake
SlurmctldHost=$HOST
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
NodeName=$HOST CPUs=$cpus RealMemory=$mem Gres=gpu:fake:$FAKE_GPUS State=UNKNOWN
PartitionName=cpu Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$HOST MaxTime=INFINITE State=UP
CONF
  printf '%s\nNodeName=%s Name=gpu Type=fake File=/dev/fakegpu[0-%d]\n' "$MARKER" "$HOST" $((FAKE_GPUS - 1)) > "$GRES"
}

# munge is not SLURM's alone: an existing key (Debian's package makes one) is used as it is, and a
# munged already running that this script did not start is used and left running on stop. Both
# only where refuse_foreign found no SLURM of the machine's own to authenticate for.
start_munge() {
  local pid
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
    chown -R munge:munge /etc/munge
    chmod 0400 /etc/munge/munge.key
  fi
  chown munge:munge /run/munge
  if [ -s "$STATE/munged.pid" ] && kill -0 "$(cat "$STATE/munged.pid")" 2>/dev/null; then return; fi
  pid=$(cat /run/munge/munged.pid 2>/dev/null || true)
  if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = munged ]; then
    echo "cluster.sh: using the munged already running (PID $pid); stop leaves it running" >&2
    return
  fi
  runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
  sleep 0.5
  cp /run/munge/munged.pid "$STATE/munged.pid"
}

start_daemon() {  # name, pidfile, log, the daemon's arguments
  if [ -s "$2" ] && kill -0 "$(cat "$2")" 2>/dev/null; then return; fi
  "/usr/sbin/$1" "${@:4}"
  for _ in $(seq 30); do [ -s "$2" ] && kill -0 "$(cat "$2")" 2>/dev/null && return; sleep 0.2; done
  echo "cluster.sh: $1 did not start; the end of $3:" >&2
  tail -5 "$3" >&2
  exit 1
}

wait_idle() {
  for _ in $(seq 60); do
    state=$(timeout 5 sinfo -h -n "$HOST" -o %t 2>/dev/null | head -1 || true)
    case "$state" in idle*|mix*|alloc*) return 0;; esac
    scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
    sleep 1
  done
  echo "cluster.sh: node $HOST did not become idle (state: ${state:-none}); see $STATE/slurmd.log" >&2
  return 1
}

stop() {
  for name in slurmd slurmctld munged; do
    pidfile="$STATE/$name.pid"
    [ -s "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$pidfile"
  done
  # A slurm.conf naming a controller that is down makes every snakemake call wait in scontrol.
  # Only this script's own files go (marked by their first line); anything else stays as it is.
  for f in "$CONF" "$GRES"; do
    if marked "$f"; then rm -f "$f"
    elif [ -e "$f" ]; then echo "cluster.sh: left $f: not written by this script" >&2
    fi
  done
}

case "${1:-}" in
  start)
    refuse_foreign   # first: before anything is installed or written
    need_root
    install_packages
    write_config
    start_munge
    # -c: a fresh controller forgets an earlier run's jobs (kept in $STATE an hour, MinJobAge),
    # which the tests would count as their own where a test folder's path repeats
    start_daemon slurmctld "$STATE/slurmctld.pid" "$STATE/slurmctld.log" -c
    start_daemon slurmd "$STATE/slurmd.pid" "$STATE/slurmd.log"
    wait_idle
    sinfo
    ;;
  stop) need_root; stop ;;
  status) sinfo && squeue ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
