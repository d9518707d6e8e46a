"""``make airflow``: the project's DAGs in a local Airflow with its UI, until Ctrl-C.

Starts the local services the configuration asks for (PostgreSQL, the API simulator, the SMTP
sink, the profile receiver: see ``devservices.local_services``), keeps Airflow's metadata in a
database of its own in the local PostgreSQL (or in ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` when
that is set), and runs Airflow's api-server, scheduler, dag-processor and triggerer with the
LocalExecutor. The UI is at http://127.0.0.1:8080 (``LOCAL_AIRFLOW_PORT``), login ``admin`` with
the password ``LOCAL_AIRFLOW_ADMIN_PASSWORD``. DAGs start unpaused, so the scheduler also runs the latest
daily interval at once. Unless ``AIRFLOW_VAR_CSV_FOLDER_IMPORT`` is set, the Variable
``csv_folder_import`` points at the demo drop (generated once, ``CSV_DEMO_SIZE``, default 50MB,
see ``devservices.csv_demo``), so that csv_folder_import runs from the UI with an empty form;
likewise ``usage_files_ingest`` reads the demo folder ``.local/usage_demo/incoming`` unless
``AIRFLOW_VAR_USAGE_FILES_INGEST`` is set (``devservices.usage_demo``). ``user_profiles_relay``
sends to the local profile receiver (the ``profile_receiver`` connection of ``.env``).
``csv_column_sums`` answers its REST API (``/column-sums`` on the same address): a local S3
server (moto) holds a small sample CSV, the connection ``column_sums_s3`` reaches it, and unless
``AIRFLOW_VAR_CSV_COLUMN_SUMS`` is set the Variable ``csv_column_sums`` reads local files from the
demo root holding the same sample (``devservices.column_sums_demo``); the curl lines to try are
printed once Airflow is up.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from devservices.airflow_cluster import ADMIN_USER, LocalAirflow
from devservices.column_sums_demo import (
    S3_CONN_ID,
    configure_demo_sums,
    curl_session,
    docs_url,
    s3_environment,
    sample,
    serve_from_s3,
)
from devservices.csv_demo import configure_demo_import
from devservices.environment import PROJECT_ROOT, load_settings
from devservices.local_services import OUTBOX, RECEIVER_STORE, start_local_services
from devservices.postgres import LocalPostgres
from devservices.s3_server import LocalS3
from devservices.usage_demo import configure_demo_ingest, usage_demo_incoming, writing_demo_files

METADATA_DATABASE = "airflow_metadata"
# csv_column_sums' demo sample: small, so that a request from the UI or curl answers in seconds.
SUMS_SAMPLE_ROWS = 20_000
SUMS_SAMPLE_COLUMNS = 30

log = logging.getLogger("make airflow")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    load_settings()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("LOCAL_AIRFLOW_PORT", "8080")), help="the UI's port"
    )
    # Where the task runner and the triggerer serve their logs (another Airflow may hold the defaults).
    parser.add_argument("--worker-log-port", type=int, default=8793)
    parser.add_argument("--triggerer-log-port", type=int, default=8794)
    args = parser.parse_args(argv)
    # SIGTERM (a supervisor, `kill`) stops as cleanly as Ctrl-C, wherever start-up has got to.
    signal.signal(signal.SIGTERM, _interrupt)

    try:
        # Before Airflow starts: its components take the Variable from this environment.
        csv_import_settings = configure_demo_import()
        usage_settings = configure_demo_ingest()
        with ExitStack() as services:
            sums_demo = _start_sums_demo(services)
            local_postgres = start_local_services(services, profile_receiver=True)
            airflow = LocalAirflow(
                home=Path(os.environ["AIRFLOW_HOME"]),
                metadata_url=metadata_url(local_postgres),
                admin_password=os.environ.get("LOCAL_AIRFLOW_ADMIN_PASSWORD", "admin"),
                api_port=args.port,
                worker_log_server_port=args.worker_log_port,
                triggerer_log_server_port=args.triggerer_log_port,
            )
            services.enter_context(airflow)
            if demo_incoming := usage_demo_incoming(usage_settings):
                services.enter_context(writing_demo_files(demo_incoming))
            _serve(airflow, csv_import_settings, usage_settings, sums_demo)
    except KeyboardInterrupt:
        log.info("stopped Airflow and the local services")
    return 0


def _start_sums_demo(services: ExitStack) -> list[str]:
    """The local S3 server with the sample, its connection and the Variable ``csv_column_sums``;
    the sample's locations, on disk and on S3, for the curl lines.

    Before Airflow starts: its components take the connection and the Variable from this
    environment.
    """
    written = sample(SUMS_SAMPLE_ROWS, SUMS_SAMPLE_COLUMNS)
    s3 = services.enter_context(LocalS3())
    os.environ.update(s3_environment(s3))
    s3_location = serve_from_s3(s3, Path(written.path))
    configure_demo_sums()
    log.info("local S3 (connection %s) on %s serves %s", S3_CONN_ID, s3.endpoint_url, s3_location)
    return [Path(written.path).name, s3_location]


def _serve(
    airflow: LocalAirflow, csv_import_settings: str, usage_settings: str, sums_locations: list[str]
) -> None:
    dag_ids = sorted(path.stem for path in (PROJECT_ROOT / "dags").glob("*.py"))
    airflow.wait_until_ready(dag_ids)
    print(
        f"\nAirflow is up: {airflow.url}"
        f"\n  login: {ADMIN_USER}, password: LOCAL_AIRFLOW_ADMIN_PASSWORD (default admin)"
        f"\n  DAGs: {', '.join(dag_ids)}"
        f"\n  component logs: {airflow.home}/*.log, task logs: {airflow.home}/logs"
        f"\n  mail sent by the DAGs: {OUTBOX}"
        f"\n  csv_folder_import (trigger it with an empty form) reads: {csv_import_settings}"
        f"\n  usage_files_ingest (every 5 minutes; the demo folder gets a new file every minute) reads: "
        f"{usage_settings}"
        f"\n  user_profiles_relay (trigger it with a count) sends to the profile_receiver connection; "
        f"the local receiver keeps what it accepted in {RECEIVER_STORE}"
        f"\n  csv_column_sums answers its REST API; its OpenAPI page: {docs_url(airflow.url)}"
        f"\n  ask for the sample's sums (password: LOCAL_AIRFLOW_ADMIN_PASSWORD):",
        flush=True,
    )
    for line in curl_session(airflow.url, ADMIN_USER, sums_locations):
        print(f"    {line}", flush=True)
    print("Ctrl-C stops everything.", flush=True)
    while True:
        time.sleep(5)
        airflow.check_components_alive()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def metadata_url(local_postgres: LocalPostgres | None, database: str = METADATA_DATABASE) -> str:
    """Airflow's metadata database: the configured one, else ``database`` in the local cluster."""
    configured = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
    if configured:
        return configured
    if local_postgres is None:
        sys.exit(
            "Airflow needs a metadata database: set START_LOCAL_POSTGRES=1, "
            "or AIRFLOW__DATABASE__SQL_ALCHEMY_CONN to a PostgreSQL URL."
        )
    local_postgres.create_database(database)
    return local_postgres.airflow_metadata_url(database)


if __name__ == "__main__":
    sys.exit(main())
