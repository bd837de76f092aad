#!/bin/bash
# Starts a one-node Slurm cluster on this machine, for the integration tests
# of the Slurm backend (tests/backends/test_slurm_real.cpp). Run as root.
# Needs the Debian packages slurm-wlm and munge (slurmctld, slurmd, the
# client commands, munged). Idempotent: does nothing when the node is
# already up, and only ever rewrites a slurm.conf that it wrote itself.
#
# The cluster: this host (hostname -s) as controller and only node, with
# max(nproc, 8) CPUs (test jobs mostly sleep; on a 2-core machine shared by
# several test suites, 2 slots made them queue behind each other) and its
# memory (free), one partition `debug` (default, no time limit). A changed
# configuration (another machine size, a new version of this script) is
# written and the daemons restarted; jobs survive that.
# No cgroups (proctrack/linuxproc, task/none: works in containers), no
# accounting daemon: finished jobs stay visible to squeue for MinJobAge=300 s,
# which is how the tests (and a launcher without accounting) read COMPLETED,
# FAILED, TIMEOUT and CANCELLED. KillWait=2 and a short scheduler interval
# keep the time-limit test short.
#
# Exit status: 0 when the node is idle (or busy) and accepts jobs, 1 on
# failure (the logs named in the message tell why), 77 when not root or when
# the packages are missing (the tests then skip).
set -u

log_dir=/var/log/slurm-melissa
state_dir=/var/spool/slurm-melissa
conf=/etc/slurm/slurm.conf
marker="# written by melissa tests/slurm/start-slurm.sh"

if [ "$(id -u)" != 0 ]; then
  echo "start-slurm.sh: must run as root" >&2
  exit 77
fi
for program in slurmctld slurmd sinfo munged; do
  if ! command -v "$program" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$program" ]; then
    echo "start-slurm.sh: $program not found (apt-get install slurm-wlm munge)" >&2
    exit 77
  fi
done
export PATH="$PATH:/usr/sbin:/sbin"

node_ready() {
  local state
  state=$(sinfo -h -N -o %T 2>/dev/null | head -n 1)
  case "$state" in
    idle* | mixed* | allocated* | completing*) return 0 ;;
    *) return 1 ;;
  esac
}

host=$(hostname -s)
cpus=$(nproc)
[ "$cpus" -lt 8 ] && cpus=8
# MiB, with some left to the system.
memory=$(free -m | awk '/^Mem:/ { print int($2 * 0.9) }')

if [ -f "$conf" ] && ! grep -qF "$marker" "$conf"; then
  echo "start-slurm.sh: $conf exists and was not written by this script; not touching it" >&2
  exit 1
fi
mkdir -p "$log_dir" "$state_dir/ctld" "$state_dir/d" /etc/slurm
new_conf=$(mktemp)
cat >"$new_conf" <<EOF
$marker
ClusterName=melissa-test
SlurmctldHost=$host
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPidFile=$state_dir/slurmctld.pid
SlurmdPidFile=$state_dir/slurmd.pid
StateSaveLocation=$state_dir/ctld
SlurmdSpoolDir=$state_dir/d
SlurmctldLogFile=$log_dir/slurmctld.log
SlurmdLogFile=$log_dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# Finished jobs stay in squeue for 5 minutes (no accounting daemon here).
MinJobAge=300
# Seconds between SIGTERM and SIGKILL at the time limit or scancel.
KillWait=2
OverTimeLimit=0
InactiveLimit=0
ReturnToService=2
# The node line below claims more CPUs than a small machine has.
SlurmdParameters=config_overrides
# srun starts Open MPI programs through PMIx (Debian's Open MPI has no PMI-1/2).
MpiDefault=pmix
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

pidfile_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
stop_daemon() {
  pidfile_alive "$1" || return 0
  kill "$(cat "$1")" 2>/dev/null
  for _ in $(seq 100); do
    pidfile_alive "$1" || return 0
    sleep 0.1
  done
}

restart=0
if [ -f "$conf" ] && cmp -s "$new_conf" "$conf"; then
  rm -f "$new_conf"
  if node_ready; then
    exit 0
  fi
else
  mv "$new_conf" "$conf"
  chmod 644 "$conf"
  restart=1
fi

# munge: the key comes with the Debian package; make one if it is missing.
if [ ! -s /etc/munge/munge.key ]; then
  mkdir -p /etc/munge
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  chown munge:munge /etc/munge/munge.key 2>/dev/null || true
  chmod 400 /etc/munge/munge.key
fi
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
  if id munge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged || true
  else
    /usr/sbin/munged --force || true
  fi
  for _ in $(seq 50); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
    sleep 0.1
  done
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    echo "start-slurm.sh: munged does not answer (see /var/log/munge/munged.log)" >&2
    exit 1
  fi
fi

# Daemons running an older configuration: restarted (slurmctld keeps its
# state in StateSaveLocation, running jobs keep their slurmstepd).
if [ "$restart" = 1 ]; then
  stop_daemon "$state_dir/slurmctld.pid"
  stop_daemon "$state_dir/slurmd.pid"
fi
if ! pidfile_alive "$state_dir/slurmctld.pid"; then
  slurmctld || { echo "start-slurm.sh: slurmctld failed (see $log_dir/slurmctld.log)" >&2; exit 1; }
fi
if ! pidfile_alive "$state_dir/slurmd.pid"; then
  slurmd || { echo "start-slurm.sh: slurmd failed (see $log_dir/slurmd.log)" >&2; exit 1; }
fi

for _ in $(seq 300); do
  if node_ready; then
    exit 0
  fi
  # A node left down or drained by an earlier run: give it back.
  case "$(sinfo -h -N -o %T 2>/dev/null | head -n 1)" in
    down* | drain*) scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true ;;
  esac
  sleep 0.2
done
echo "start-slurm.sh: node $host not idle after 60 s: $(sinfo -N 2>&1 | tail -n 1)" \
  "(see $log_dir/slurmctld.log and $log_dir/slurmd.log)" >&2
exit 1
