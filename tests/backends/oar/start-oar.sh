#!/bin/bash
# Starts a one-node OAR 2.5 cluster on this machine, for the integration test
# of the OAR backend (tests/backends/test_oar_real.cpp). Run as root. Needs
# the Debian packages oar-server oar-server-pgsql oar-node oar-user
# oar-user-pgsql openssh-server postgresql. Idempotent: what already runs is
# left alone.
#
# What it does, in the order OAR needs it:
#  - starts the PostgreSQL cluster and creates OAR's database (oar-database),
#    with passwords set in /etc/oar/oar.conf if they are empty;
#  - turns off OAR's cpuset/cgroup job manager (JOB_RESOURCE_MANAGER_PROPERTY_DB_FIELD),
#    which needs cgroup mounts a container may not have;
#  - starts the node side: OAR's own sshd on port 6667 (oarsh, and how the
#    server starts jobs), with the keys the oar-node package generated;
#  - starts the server (Almighty), without systemd (no init in containers);
#  - declares this host (as "localhost") with one resource per CPU;
#  - creates the user melissa-oar: OAR's default admission rules refuse jobs
#    from root and oar, so the test submits as that user.
#
# Exit status: 0 when the resources are Alive, 1 on failure, 77 when not root
# or when the packages are missing (the test then skips).
set -u
export PATH="$PATH:/usr/sbin:/sbin"
conf=/etc/oar/oar.conf
user=melissa-oar

if [ "$(id -u)" != 0 ]; then
  echo "start-oar.sh: must run as root" >&2
  exit 77
fi
for program in oarsub oarstat oardel oarnodesetting oar-database pg_ctlcluster sshd; do
  if ! command -v "$program" >/dev/null 2>&1; then
    echo "start-oar.sh: $program not found (apt-get install oar-server oar-server-pgsql oar-node" \
      "oar-user oar-user-pgsql openssh-server postgresql)" >&2
    exit 77
  fi
done
if [ ! -f "$conf" ] || [ ! -x /usr/lib/oar/Almighty ]; then
  echo "start-oar.sh: OAR server not installed (apt-get install oar-server oar-server-pgsql)" >&2
  exit 77
fi

resources_alive() {
  [ "$(oarnodes -s 2>/dev/null | grep -c ': Alive')" -ge 1 ]
}

# PostgreSQL: the first cluster of pg_lsclusters.
read -r pg_version pg_cluster _ pg_status _ < <(pg_lsclusters -h | head -n 1)
if [ -z "${pg_version:-}" ]; then
  echo "start-oar.sh: no PostgreSQL cluster (pg_lsclusters)" >&2
  exit 1
fi
if [ "$pg_status" != online ]; then
  pg_ctlcluster "$pg_version" "$pg_cluster" start || { echo "start-oar.sh: PostgreSQL does not start" >&2; exit 1; }
fi

sed -i 's/^DB_BASE_PASSWD=""/DB_BASE_PASSWD="oar-melissa-tests"/;
        s/^DB_BASE_PASSWD_RO=""/DB_BASE_PASSWD_RO="oar-ro-melissa-tests"/;
        s/^JOB_RESOURCE_MANAGER_PROPERTY_DB_FIELD=/#JOB_RESOURCE_MANAGER_PROPERTY_DB_FIELD=/' "$conf"
if ! oar-database --check >/dev/null 2>&1; then
  oar-database --create --db-is-local -y >/dev/null || { echo "start-oar.sh: oar-database --create failed" >&2; exit 1; }
fi

# The node's sshd (port 6667).
if ! (ss -ltn 2>/dev/null || netstat -ltn 2>/dev/null) | grep -q ':6667 '; then
  mkdir -p /run/sshd
  /usr/sbin/sshd -f /etc/oar/sshd_config -o PidFile=/run/oar-node_sshd.pid ||
    { echo "start-oar.sh: OAR's sshd does not start" >&2; exit 1; }
fi

# The server: Almighty listens on SERVER_PORT (6666).
if ! (ss -ltn 2>/dev/null || netstat -ltn 2>/dev/null) | grep -q ':6666 '; then
  /etc/init.d/oar-server start >/dev/null || { echo "start-oar.sh: Almighty does not start (see /var/log/oar.log)" >&2; exit 1; }
fi

if ! oarnodes -s 2>/dev/null | grep -q .; then
  oarproperty -a cpu >/dev/null 2>&1 || true
  oarproperty -a core >/dev/null 2>&1 || true
  for core in $(seq "$(nproc)"); do
    oarnodesetting -a -h localhost -p cpu=1 -p core="$core" -p cpuset=$((core - 1)) >/dev/null ||
      { echo "start-oar.sh: oarnodesetting failed" >&2; exit 1; }
  done
fi

id "$user" >/dev/null 2>&1 || useradd -m -s /bin/bash "$user"

for _ in $(seq 100); do
  resources_alive && exit 0
  sleep 0.2
done
echo "start-oar.sh: no resource Alive after 20 s: $(oarnodes -s 2>&1 | tr '\n' ' ') (see /var/log/oar.log)" >&2
exit 1
