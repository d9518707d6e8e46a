"""``make airflow-cli ARGS="..."``: any ``airflow`` command against the project's local Airflow.

A bare ``airflow`` knows nothing of this project: no ``AIRFLOW_HOME``, DAGs folder, connections
or migrated metadata database. This runs ``airflow ARGS`` in the environment ``make airflow``
gives its components (the same Airflow home and metadata database ``airflow_metadata`` in the
local PostgreSQL, the connections and variables of ``.env``), after ``airflow db migrate`` and
``airflow dags reserialize`` (the DAG files as they are now; ``dags test`` reads its file itself).
So ``dags trigger`` and ``backfill create`` reach the scheduler of a running ``make airflow``,
and ``dags test`` runs a DAG in this one process, without a scheduler.

The local services the configuration asks for are started for the command and stopped after
it, unless they already run (``make airflow`` in another terminal): then they are used as they
are and left running. The command's exit status is ``airflow``'s.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

from devservices.airflow_cluster import LocalAirflow
from devservices.environment import PROJECT_ROOT, load_settings
from devservices.local_airflow import metadata_url
from devservices.local_services import start_local_services

log = logging.getLogger("make airflow-cli")

USAGE = """usage: make airflow-cli ARGS="<airflow command>"
  e.g. make airflow-cli ARGS="dags list"
       make airflow-cli ARGS="dags test airflow_maintenance 2026-11-23 -c '{\\"dry_run\\": true}'"
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        sys.stderr.write(USAGE)
        return 2
    # Our own lines go to stderr, so that `airflow`'s output on stdout can be piped as it is.
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    load_settings()
    with ExitStack() as services:
        local_postgres = start_local_services(services, reuse_running=True)
        airflow = LocalAirflow(
            home=Path(os.environ["AIRFLOW_HOME"]),
            metadata_url=metadata_url(local_postgres),
            admin_password=os.environ.get("LOCAL_AIRFLOW_ADMIN_PASSWORD", "admin"),
            api_port=int(os.environ.get("LOCAL_AIRFLOW_PORT", "8080")),
        )
        airflow.home.mkdir(parents=True, exist_ok=True)
        # A no-op on a current database; a newcomer's first command would otherwise stop at
        # "Database migration required".
        airflow.run_cli(["db", "migrate"], log_name="db-migrate")
        # What `make airflow`'s dag-processor does: without it `dags list`, `dags trigger` and
        # `backfill create` know only the DAGs as they were when Airflow last ran, or none.
        # `dags test` parses its DAG file itself.
        if args[:2] != ["dags", "test"]:
            airflow.run_cli(["dags", "reserialize"], log_name="dags-reserialize")
        log.info("airflow %s (Airflow home %s)", " ".join(args), airflow.home)
        completed = subprocess.run(
            [str(Path(sys.executable).parent / "airflow"), *args],
            env=airflow.environment(),
            cwd=PROJECT_ROOT,
            check=False,
        )
    return completed.returncode


if __name__ == "__main__":
    sys.exit(main())
