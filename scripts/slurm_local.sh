#!/usr/bin/env bash
# A one-node SLURM cluster on this machine (localhost), from Debian's packages: for CI's SLURM
# test and for trying `hydra/launcher=slurm` without a cluster. Needs root.
#
#   bash scripts/slurm_local.sh           # install, configure, start; wait until the node is idle
#   bash scripts/slurm_local.sh status    # exit 0 when the node answers and is usable
#   bash scripts/slurm_local.sh stop      # stop the daemons this script started (by pid file)
#
# Idempotent: packages already there are not installed again, a running cluster whose config is
# unchanged is left alone, and a changed config (another machine size) restarts the daemons.
# The node gets this machine's CPUs (nproc) and 95% of its memory (MemTotal); there is one
# partition, `debug` (the default, so `hydra.launcher.partition` may stay null). No cgroups, no
# accounting: ProctrackType=proctrack/linuxproc, TaskPlugin=task/none, munge and the SLURM
# daemons run as root (this is a test cluster, not a shared one).
set -euo pipefail

PARTITION=debug
CONF=/etc/slurm/slurm.conf
STATE=/var/lib/slurm
LOGS=/var/log/slurm
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_PID=/run/munge/munged.pid
START_TIMEOUT=${SLURM_LOCAL_TIMEOUT:-90}   # seconds to wait for the node to become idle

log() { echo "slurm_local: $*" >&2; }
die() { log "error: $*"; exit 1; }

alive() {  # alive PIDFILE: the process named by the pid file is running
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

stop_pid() {  # stop_pid PIDFILE NAME: end the daemon of a pid file and wait for it to go
  local pid
  alive "$1" || return 0
  pid=$(cat "$1")
  log "stopping $2 (pid $pid)"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null || true
}

install_packages() {
  if command -v munged >/dev/null && command -v slurmctld >/dev/null \
      && command -v slurmd >/dev/null && command -v sbatch >/dev/null; then
    return
  fi
  log "installing munge and slurm-wlm"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends munge slurm-wlm >/dev/null
}

start_munge() {
  # munged as root refuses files and folders owned by another user ("insecure"): give the
  # package's munge folders to root. The key comes with the package; make one if it is missing.
  mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    log "creating /etc/munge/munge.key"
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown -R root:root /etc/munge /var/lib/munge /var/log/munge /run/munge
  chmod 0700 /etc/munge /var/lib/munge /var/log/munge
  chmod 0600 /etc/munge/munge.key
  chmod 0755 /run/munge
  if alive "$MUNGE_PID" && munge -n </dev/null | unmunge >/dev/null 2>&1; then
    return
  fi
  stop_pid "$MUNGE_PID" munged
  rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
  log "starting munged"
  munged
  munge -n </dev/null | unmunge >/dev/null || die "munge does not work (see /var/log/munge/)"
}

write_config() {  # write_config FILE: slurm.conf for this machine
  local host cpus mem_mib
  host=$(hostname -s)
  cpus=$(nproc)
  mem_mib=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.95}' /proc/meminfo)
  cat >"$1" <<EOF
# Written by scripts/slurm_local.sh: a one-node test cluster on this machine.
ClusterName=isingaug-local
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SlurmdParameters=config_overrides
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
StateSaveLocation=${STATE}/slurmctld
SlurmdSpoolDir=${STATE}/slurmd
SlurmctldPidFile=${CTLD_PID}
SlurmdPidFile=${SLURMD_PID}
SlurmctldLogFile=${LOGS}/slurmctld.log
SlurmdLogFile=${LOGS}/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=10
MinJobAge=300
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem_mib} State=UNKNOWN
PartitionName=${PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

node_state() {
  sinfo -h -n "$(hostname -s)" -o %T 2>/dev/null | head -1 | tr -d '*~#'
}

wait_idle() {
  local start state
  start=$(date +%s)
  while true; do
    state=$(node_state || true)
    case "$state" in
      idle|mixed|allocated|completing) return 0 ;;
      down|drained|draining|drain|fail|failing)
        scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true ;;
    esac
    if [ $(( $(date +%s) - start )) -ge "$START_TIMEOUT" ]; then
      log "node state after ${START_TIMEOUT}s: '${state}'"
      tail -n 20 "$LOGS/slurmctld.log" "$LOGS/slurmd.log" >&2 || true
      die "the node did not become idle"
    fi
    sleep 1
  done
}

start() {
  local t0 new
  t0=$(date +%s)
  [ "$(id -u)" -eq 0 ] || die "run as root (it installs packages and starts daemons)"
  install_packages
  start_munge
  mkdir -p /etc/slurm "$STATE/slurmctld" "$STATE/slurmd" "$LOGS"
  new=$(mktemp)
  write_config "$new"
  if ! cmp -s "$new" "$CONF"; then
    log "writing $CONF"
    stop_pid "$SLURMD_PID" slurmd
    stop_pid "$CTLD_PID" slurmctld
    install -m 0644 "$new" "$CONF"
  fi
  rm -f "$new"
  if ! alive "$CTLD_PID"; then
    log "starting slurmctld"
    slurmctld
  fi
  if ! alive "$SLURMD_PID"; then
    log "starting slurmd"
    slurmd
  fi
  wait_idle
  log "cluster up in $(( $(date +%s) - t0 ))s: $(sinfo -h -o '%P %D %c CPUs %m MB %T' | head -1)"
}

case "${1:-start}" in
  start) start ;;
  status)
    alive "$CTLD_PID" && alive "$SLURMD_PID" || die "slurmctld or slurmd is not running"
    state=$(node_state || true)
    case "$state" in idle|mixed|allocated|completing) sinfo ;; *) die "node state '$state'" ;; esac
    ;;
  stop)
    stop_pid "$SLURMD_PID" slurmd
    stop_pid "$CTLD_PID" slurmctld
    stop_pid "$MUNGE_PID" munged
    ;;
  *) die "usage: $0 [start|status|stop]" ;;
esac
