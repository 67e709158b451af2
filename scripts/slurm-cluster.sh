#!/usr/bin/env bash
# A throwaway single-node Slurm cluster for tests and local trials: munged, slurmctld and slurmd run as
# the current user with their own config, state, munge key and socket under DIR (nothing under /etc, no
# systemd). Debian packages: slurmctld slurmd slurm-client munge.
#
#   scripts/slurm-cluster.sh start DIR   # prints SLURM_CONF=DIR/slurm.conf once the node is idle
#   scripts/slurm-cluster.sh stop DIR    # cancels every job, then stops the daemons by pid
#
# Clients reach it with SLURM_CONF=DIR/slurm.conf. Accounting is off (jobcomp/filetxt records finished
# jobs in DIR/log/jobcomp.txt); processes are tracked by parent pid (proctrack/linuxproc, task/none), so
# no cgroups are needed; the node's CPUs and memory come from `slurmd -C`.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop DIR" >&2
  exit 2
fi

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

stop_pid() {
  local file=$1
  [ -f "$file" ] || return 0
  local pid
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

case "$cmd" in
start)
  for bin in munged slurmctld slurmd sbatch squeue scontrol; do
    if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$bin" ]; then
      echo "slurm-cluster: $bin not found; install the Debian packages slurmctld slurmd slurm-client munge" >&2
      exit 3
    fi
  done
  export PATH="$PATH:/usr/sbin"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log"
  chmod 700 "$dir/munge"
  # A fresh key for this cluster only.
  head -c 1024 /dev/urandom >"$dir/munge/munge.key"
  chmod 400 "$dir/munge/munge.key"
  munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed"

  host=$(hostname -s)
  # The node as slurmd sees it (CPUs, sockets, cores, threads, memory), named after this host.
  node=$(slurmd -C | head -1 | sed -E "s/^NodeName=[^ ]+/NodeName=$host/")
  user=$(id -un)
  cat >"$dir/slurm.conf" <<EOF
ClusterName=sdt-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,sched_interval=1,default_queue_depth=1000
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
ReturnToService=2
KillWait=5
MinJobAge=600
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF="$dir/slurm.conf"
  slurmctld -f "$SLURM_CONF"
  slurmd -f "$SLURM_CONF"
  for _ in $(seq 100); do
    state=$(sinfo -h -N -o %T 2>/dev/null | head -1 || true)
    if [ "$state" = idle ]; then
      # The controller starts its scheduler a few seconds after the node registers: one trivial job
      # run to the end shows the whole path works before anyone relies on it.
      if ! timeout 60 sbatch --wait --quiet --output=/dev/null --wrap=true; then
        echo "slurm-cluster: a trivial job did not run; logs in $dir/log" >&2
        exit 4
      fi
      echo "SLURM_CONF=$SLURM_CONF"
      exit 0
    fi
    sleep 0.2
  done
  echo "slurm-cluster: the node did not become idle in 20 s (state: ${state:-none}); logs in $dir/log" >&2
  exit 4
  ;;
stop)
  dir=$(cd "$dir" && pwd)
  export SLURM_CONF="$dir/slurm.conf" PATH="$PATH:/usr/sbin"
  if [ -f "$dir/slurmctld.pid" ] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; then
    ids=$(squeue -h -o %A 2>/dev/null || true)
    if [ -n "$ids" ]; then
      # shellcheck disable=SC2086
      scancel $ids 2>/dev/null || true
      for _ in $(seq 100); do [ -z "$(squeue -h -o %A -t PD,R,CG 2>/dev/null)" ] && break; sleep 0.2; done
    fi
  fi
  stop_pid "$dir/slurmd.pid"
  stop_pid "$dir/slurmctld.pid"
  stop_pid "$dir/munge/munged.pid"
  ;;
*)
  echo "usage: $0 start|stop DIR" >&2
  exit 2
  ;;
esac
