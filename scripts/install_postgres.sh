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

"$(dirname "$0")/apt_install.sh" install_postgres postgresql

# In case an existing policy allowed the start: no server was installed before this script, so
# any cluster online now came with the package.
pg_lsclusters --no-header | while read -r version cluster _port status _rest; do
    if [[ $status == online* ]]; then
        echo "install_postgres: stopping the package's cluster $version/$cluster" >&2
        pg_ctlcluster "$version" "$cluster" stop
    fi
done
