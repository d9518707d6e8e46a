"""The bodies of the ``airflow_maintenance`` tasks: Airflow context in, plain calls out."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from include.common.postgres import connect, conninfo_from_airflow
from include.learning_platform.landing_retention import LOCK_TIMEOUT, purge_old_landing
from include.learning_platform.warehouse import DB_CONN_ID, migrate_schema
from include.maintenance.logs import purge_old_logs
from include.maintenance.metadata import (
    METADATA_DB_CONN_ID,
    MetadataCleanError,
    cleanable_tables,
    run_db_clean,
    sqlalchemy_url,
)
from include.maintenance.retention import retention_cutoff, run_anchor

log = logging.getLogger(__name__)


def cutoff(context: dict[str, Any], days_param: str) -> datetime:
    dag_run = context.get("dag_run")
    anchor = run_anchor(
        data_interval_end=context.get("data_interval_end"),
        logical_date=context.get("logical_date"),
        run_after=getattr(dag_run, "run_after", None),
    )
    return retention_cutoff(anchor, int(context["params"][days_param]))


def delete_old_logs(context: dict[str, Any]) -> dict[str, Any]:
    from airflow.sdk import conf

    # Local to the worker running this task: with several workers, each keeps its own logs.
    root = Path(conf.get("logging", "base_log_folder")).expanduser()
    purge = purge_old_logs(root, cutoff(context, "log_retention_days"), dry_run=context["params"]["dry_run"])
    if purge.failures:
        raise OSError(
            f"{len(purge.failures)} old log entries under {root} could not be deleted "
            f"(first: {purge.failures[0]}); the rest were purged. Fix their permissions."
        )
    return purge.summary()


def clean_metadata(context: dict[str, Any]) -> dict[str, Any]:
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        connection = Connection.get(METADATA_DB_CONN_ID)
    except AirflowNotFoundException:
        raise MetadataCleanError(
            f"the Airflow connection '{METADATA_DB_CONN_ID}' is not defined: Airflow 3 tasks cannot "
            "reach the metadata database on their own, so this connection must describe it "
            "(the same database as [database] sql_alchemy_conn)"
        ) from None
    purge = run_db_clean(
        sqlalchemy_url(connection),
        cutoff(context, "metadata_retention_days"),
        dry_run=context["params"]["dry_run"],
        tables=cleanable_tables(),
    )
    return purge.summary()


def drop_old_landing(context: dict[str, Any]) -> dict[str, Any]:
    """The learning platform's landing and staging of published days older than the retention."""
    oldest_kept_day = cutoff(context, "landing_retention_days").date()
    ti = context["ti"]
    conn = connect(
        conninfo_from_airflow(DB_CONN_ID), conn_id=DB_CONN_ID, application_name=f"{ti.dag_id}.{ti.task_id}"
    )
    with conn:
        # The tables this code expects, partitioned: also right after an upgrade, before any pipeline run.
        migrate_schema(conn)
        purge = purge_old_landing(conn, oldest_kept_day, dry_run=context["params"]["dry_run"])
    if purge.busy:
        raise RuntimeError(
            f"{len(purge.busy)} days were in use by learning_platform_etl runs for more than {LOCK_TIMEOUT} "
            f"({', '.join(day.isoformat() for day in purge.busy)}); the other days were handled. The retry "
            "drops them; if it keeps failing, run this task when no learning_platform_etl run is active."
        )
    return purge.summary()
