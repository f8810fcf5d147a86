#!/usr/bin/env bash
# A single-node SLURM cluster on localhost, for testing the SLURM profile for real.
#
#   tests/slurm/cluster.sh start   install (Debian packages) and start munge, slurmctld, slurmd
#   tests/slurm/cluster.sh stop    stop the daemons this script started (by their PIDs)
#   tests/slurm/cluster.sh status
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
CONF=/etc/slurm/slurm.conf   # clients must find it here: the plugin's in-job srun drops SLURM_CONF

need_root() { [ "$(id -u)" = 0 ] || { echo "cluster.sh: must run as root" >&2; exit 2; }; }

write_config() {
  mkdir -p /etc/slurm "$STATE"/{spool,ctld} /var/log/slurm /run/munge
  local cpus mem
  cpus=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)  # nproc honours OMP_NUM_THREADS
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
  for i in $(seq 0 $((FAKE_GPUS - 1))); do
    [ -e /dev/fakegpu$i ] || mknod /dev/fakegpu$i c 1 3
  done
  policy_conf "$STATE" > "$CONF"
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
  echo "NodeName=$HOST Name=gpu Type=fake File=/dev/fakegpu[0-$((FAKE_GPUS - 1))]" > /etc/slurm/gres.conf
}

start_munge() {
  [ -s /etc/munge/munge.key ] || { mkdir -p /etc/munge; dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; }
  chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
  chmod 0400 /etc/munge/munge.key
  if [ -s "$STATE/munged.pid" ] && kill -0 "$(cat "$STATE/munged.pid")" 2>/dev/null; then return; fi
  runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
  sleep 0.5
  cp /run/munge/munged.pid "$STATE/munged.pid"
}

start_daemon() {  # name, pidfile, log
  if [ -s "$2" ] && kill -0 "$(cat "$2")" 2>/dev/null; then return; fi
  "/usr/sbin/$1"
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
  rm -f "$CONF"
}

case "${1:-}" in
  start)
    need_root
    install_packages
    write_config
    start_munge
    start_daemon slurmctld "$STATE/slurmctld.pid" "$STATE/slurmctld.log"
    start_daemon slurmd "$STATE/slurmd.pid" "$STATE/slurmd.log"
    wait_idle
    sinfo
    ;;
  stop) need_root; stop ;;
  status) sinfo && squeue ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
