#!/usr/bin/env bash
# Make PostgreSQL's server binaries (initdb, pg_ctl, postgres) available; quiet no-op when they are.
# Installs Debian's `postgresql` package when run as root. Our tooling runs its own clusters
# (devservices/postgres.py), so the `main` cluster the package creates is never left running.
set -euo pipefail

has_server() {
    [[ -x $1/initdb && -x $1/pg_ctl && -x $1/postgres ]]
}

# Same lookup as devservices.postgres.find_pg_bin: $PG_BIN wins, else any Debian version.
if [[ -n ${PG_BIN:-} ]]; then
    has_server "$PG_BIN" && exit 0
    echo "install_postgres: PG_BIN=$PG_BIN does not hold initdb, pg_ctl and postgres" >&2
    exit 1
fi
for bin_dir in /usr/lib/postgresql/*/bin; do
    has_server "$bin_dir" && exit 0
done

if ! command -v apt-get >/dev/null; then
    echo "install_postgres: no PostgreSQL server found and no apt-get to install one;" \
        "install PostgreSQL 15 or newer and set PG_BIN to the directory holding initdb" >&2
    exit 1
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "install_postgres: the PostgreSQL server is not installed. Install it with:" >&2
    echo "    sudo apt-get install postgresql" >&2
    exit 1
fi

# invoke-rc.d and deb-systemd-invoke ask policy-rc.d whether a package may start its service;
# 101 means "no", so the package's main cluster is created but not started. An existing
# policy (Docker images ship one) is left as it is.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi

echo "install_postgres: installing PostgreSQL with apt-get" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2

# In case an existing policy allowed the start: no server was installed before this script, so
# any cluster online now came with the package.
pg_lsclusters --no-header | while read -r version cluster _port status _rest; do
    if [[ $status == online* ]]; then
        echo "install_postgres: stopping the package's cluster $version/$cluster" >&2
        pg_ctlcluster "$version" "$cluster" stop
    fi
done
