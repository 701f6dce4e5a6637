#!/usr/bin/env bash
# A throwaway one-machine Slurm cluster, to try `srun` launches of mpncov where no cluster is at hand.
# Not for production: no authentication (auth/none), no accounting, one node (this machine, its CPUs),
# everything (configuration, state, logs, pid files) in one folder that `stop` removes.
#
#   scripts/slurm-local.sh start DIR    # DIR/slurm.conf written, slurmctld and slurmd started, node idle
#   SLURM_CONF=DIR/slurm.conf srun -n 2 --mpi=pmix build/mpncov train EXPERIMENT.yaml
#   scripts/slurm-local.sh stop DIR     # both daemons stopped, DIR removed
#   scripts/slurm-local.sh run CMD...   # start in a temporary folder, run CMD with SLURM_CONF set, stop
#                                       # (also on failure or Ctrl-C); exits with CMD's status. One `run`
#                                       # at a time per machine: others wait for it (a file lock)
#
# Needs root (slurmd starts the tasks as the submitting user) and Debian's `slurmctld slurmd slurm-client`
# (22.05; its mpi_pmix plugin speaks to Open MPI 4's PMIx). Not installed by scripts/install-deps.sh.
# The daemons listen on two ports picked at random above 20000 that nothing listens on (SLURM_LOCAL_PORT
# to choose: it and the next), not Slurm's 6817/6818, so a real installation is left alone. Two throwaway
# clusters at once are not: their job ids both start at 1, and task launches of the one fail now and then
# ("launch failed: Unspecified error") while the other runs steps, so `run` holds a lock
# (/tmp/mpncov-slurm-local.lock) from start to stop and tests that use it can run in parallel.
set -euo pipefail

die() { echo "slurm-local: $*" >&2; exit 1; }

# Two consecutive free ports, the first even.
free_ports() {
  local port
  for _ in $(seq 1 20); do
    port=$((20000 + 2 * (RANDOM % 10000)))
    if ! command -v ss > /dev/null || [[ -z $(ss -Htln "( sport = :$port or sport = :$((port + 1)) )") ]]; then
      echo "$port"
      return 0
    fi
  done
  die "found no free port pair above 20000"
}

write_config() {
  local dir=$1 host cpus port
  port=${SLURM_LOCAL_PORT:-$(free_ports)}
  host=$(hostname -s)
  cpus=$(nproc --all)
  mkdir -p "$dir/state" "$dir/spool"
  cat > "$dir/slurm.conf" <<EOF
ClusterName=mpncov-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
}

start() {
  local dir=$1
  [[ $(id -u) == 0 ]] || die "needs root (slurmd runs the tasks as the submitting user)"
  for tool in slurmctld slurmd sinfo srun; do
    command -v "$tool" > /dev/null || die "$tool not found (Debian: apt-get install slurmctld slurmd slurm-client)"
  done
  write_config "$dir"
  export SLURM_CONF=$dir/slurm.conf
  slurmctld -f "$SLURM_CONF" -i 9>&-  # 9>&-: the daemons do not hold run's lock; -i: ignore any state a previous run left (there is none: a new folder)
  slurmd -f "$SLURM_CONF" 9>&-
  # The node registers within a second or two; until then srun would wait or fail.
  for _ in $(seq 1 60); do
    if sinfo -h -N -o '%T' 2> /dev/null | grep -qx 'idle'; then return 0; fi
    sleep 0.5
  done
  echo "slurm-local: the node did not become idle; logs:" >&2
  tail -n 20 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
  stop "$dir"
  exit 1
}

stop_daemon() {
  local pidfile=$1 pid
  [[ -f $pidfile ]] || return 0
  pid=$(cat "$pidfile")
  kill "$pid" 2> /dev/null || return 0
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2> /dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2> /dev/null || true
}

stop() {
  local dir=$1
  [[ -d $dir ]] || return 0  # stopped already
  [[ -f $dir/slurm.conf ]] || die "$dir holds no slurm.conf written by this script"
  stop_daemon "$dir/slurmd.pid"
  stop_daemon "$dir/slurmctld.pid"
  rm -rf "$dir"
}

case ${1:-} in
  start) [[ $# == 2 ]] || die "usage: $0 start DIR"; mkdir -p "$2"; start "$(cd "$2" && pwd)" ;;
  stop) [[ $# == 2 ]] || die "usage: $0 stop DIR"; [[ -d $2 ]] || exit 0; stop "$(cd "$2" && pwd)" ;;
  run)
    shift
    [[ $# -ge 1 ]] || die "usage: $0 run CMD..."
    exec 9> /tmp/mpncov-slurm-local.lock
    flock 9
    dir=$(mktemp -d /tmp/slurm-local.XXXXXX)
    trap 'stop "$dir"' EXIT
    trap 'exit 130' INT TERM
    start "$dir"
    status=0
    SLURM_CONF=$dir/slurm.conf "$@" || status=$?
    exit "$status"
    ;;
  *) die "usage: $0 start DIR | stop DIR | run CMD..." ;;
esac
