"""The bodies of the ``airflow_maintenance`` tasks: a cutoff and a dry-run flag in, a summary out.

The DAG's tasks compute the cutoff from their run (:func:`run_cutoff`) and pass it, so a body
reads like a function call and tests call it with a date of their choosing.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from airflow.sdk.types import DagRunProtocol

log = logging.getLogger(__name__)


def run_cutoff(dag_run: DagRunProtocol, days: int) -> datetime:
    """``days`` before the moment ``dag_run`` stands for: the same for every try of the run."""
    anchor = run_anchor(
        data_interval_end=dag_run.data_interval_end,
        logical_date=dag_run.logical_date,
        run_after=dag_run.run_after,
    )
    return retention_cutoff(anchor, int(days))


def delete_old_logs(cutoff: datetime, *, dry_run: bool) -> dict[str, Any]:
    from airflow.sdk import conf

    # Local to the worker running this task: with several workers, each keeps its own logs.
    root = Path(conf.get("logging", "base_log_folder")).expanduser()
    purge = purge_old_logs(root, cutoff, dry_run=dry_run)
    if purge.failures:
        raise OSError(
            f"{len(purge.failures)} old log entries under {root} could not be deleted "
            f"(first: {purge.failures[0]}); the rest were purged. Fix their permissions."
        )
    return purge.summary()


def clean_metadata(cutoff: datetime, *, dry_run: bool) -> dict[str, Any]:
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
        cutoff,
        dry_run=dry_run,
        tables=cleanable_tables(),
    )
    return purge.summary()


def drop_old_landing(oldest_kept_day: date, *, dry_run: bool, session_name: str) -> dict[str, Any]:
    """The learning platform's landing and staging of published days before ``oldest_kept_day``.

    ``session_name`` is the database session's application_name (``dag_id.task_id``), so
    pg_stat_activity shows which task holds a day's lock.
    """
    conn = connect(conninfo_from_airflow(DB_CONN_ID), conn_id=DB_CONN_ID, application_name=session_name)
    with conn:
        # The tables this code expects, partitioned: also right after an upgrade, before any pipeline run.
        migrate_schema(conn)
        purge = purge_old_landing(conn, oldest_kept_day, dry_run=dry_run)
    if purge.busy:
        raise RuntimeError(
            f"{len(purge.busy)} days were in use by learning_platform_etl runs for more than {LOCK_TIMEOUT} "
            f"({', '.join(day.isoformat() for day in purge.busy)}); the other days were handled. The retry "
            "drops them; if it keeps failing, run this task when no learning_platform_etl run is active."
        )
    return purge.summary()
