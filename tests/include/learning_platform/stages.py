"""Run the learning platform stages the way the DAG does, and read back what they wrote."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from include.common.intervals import Interval
from include.learning_platform.api import LearningPlatformClient
from include.learning_platform.extract import extract_interval
from include.learning_platform.load import LoadResult, load_interval
from include.learning_platform.validate import validate_interval

# The tasks of learning_platform_etl in the order they run.
DAG_TASKS = (
    "migrate_schema",
    "extract",
    "validate",
    "load",
    "compute_stats",
    "check_quality",
    "publish_report",
    "send_email",
)
# The DAG's last task: it runs, and fails the run, only when one of DAG_TASKS failed.
WATCHER = "mark_run_failed"
DAY = Interval.for_day(datetime(2026, 11, 22, tzinfo=UTC).date())
HOUR = timedelta(hours=1)

# Columns that define a loaded attempt; identity, run id and timestamps of the load differ per run.
ATTEMPT_COLUMNS = (
    "user_id, oauth_consumer_key, lis_result_sourcedid, lis_outcome_service_url, is_correct, "
    "attempt_type, created_at, defects, source_window_start, source_position"
)


def run_stages(
    conn: psycopg.Connection,
    client: LearningPlatformClient,
    interval: Interval = DAY,
    *,
    window: timedelta = HOUR,
    dag_run_id: str = "test_run",
) -> LoadResult:
    extract_interval(conn, client, interval, window=window, dag_run_id=dag_run_id)
    validate_interval(conn, interval)
    return load_interval(conn, interval, dag_run_id=dag_run_id)


def attempts(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(f"SELECT {ATTEMPT_COLUMNS} FROM learning_platform.attempts ORDER BY 9, 10").fetchall()


def quarantine(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT record, reasons, source_window_start, source_position "
        "FROM learning_platform.quarantined_attempts ORDER BY 3, 4"
    ).fetchall()
