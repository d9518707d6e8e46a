"""Reruns of a day with any windows, interrupted at any stage, end where one clean run ends.

Each table is replaced by the key it is written with (the windows a run landed, all inside its
interval), so whatever windows earlier runs of the day used, and wherever they stopped, the last
complete run leaves exactly the rows a single clean run with its windows leaves: landing,
staging, warehouse, quarantine, ledgers and figures.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from include.common.intervals import Interval
from include.learning_platform.api import LearningPlatformClient
from include.learning_platform.extract import extract_interval
from include.learning_platform.load import load_interval
from include.learning_platform.stats import compute_daily_stats
from include.learning_platform.validate import validate_interval
from include.learning_platform.warehouse import migrate_schema
from tests.conftest import PIPELINE_PASSWORD, PIPELINE_ROLE
from tests.include.learning_platform.stages import ATTEMPT_COLUMNS, DAY

pytestmark = pytest.mark.timeout(600)

STAGES = ("extract", "validate", "load")
# What a reader can see of each table: no run ids, landing ids or timestamps of the run.
SNAPSHOT = {
    "raw_attempts": "window_start, window_end, position, record",
    "staged_attempts": "*",
    "staged_rejections": "*",
    "attempts": ATTEMPT_COLUMNS,
    "quarantined_attempts": "record, reasons, source_window_start, source_window_end, source_position",
    "landing_batches": "interval_start, interval_end, records",
    "staging_batches": "interval_start, interval_end, checked, valid, flagged, rejected, boundary_copies",
    "load_batches": "interval_start, interval_end, fetched, loaded, quarantined, flagged, boundary_copies",
    "daily_stats": "stats_date, interval_start, interval_end, fetched, loaded, quarantined, flagged, "
    "boundary_copies, unique_users, runs, submits, successful_submits",
}


def run(
    conn: psycopg.Connection,
    client: LearningPlatformClient,
    window_minutes: int,
    *,
    interval: Interval = DAY,
    stop_after: str = "stats",
) -> None:
    """One run, as the DAG's tasks do it, stopping (a failed task) after ``stop_after``."""
    run_id = f"run_{window_minutes}_{stop_after}"
    extract_interval(conn, client, interval, window=timedelta(minutes=window_minutes), dag_run_id=run_id)
    if stop_after == "extract":
        return
    validate_interval(conn, interval)
    if stop_after == "validate":
        return
    load_interval(conn, interval, dag_run_id=run_id)
    if stop_after == "load":
        return
    compute_daily_stats(conn, interval, dag_run_id=run_id)


def snapshot(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    # Sorted whole (their repr orders NULLs and arrays too): a prefix of columns can tie.
    return {
        table: sorted(conn.execute(f"SELECT {columns} FROM learning_platform.{table}").fetchall(), key=repr)
        for table, columns in SNAPSHOT.items()
    }


@pytest.fixture(scope="module")
def warehouses(postgres_server, request: pytest.FixtureRequest) -> Iterator[tuple[psycopg.Connection, ...]]:
    """Two migrated warehouses, reused by every example: one for the sequence, one for the clean run."""
    opened = []
    for suffix in ("reruns", "clean"):
        name = "t_" + hashlib.sha256(f"{request.node.nodeid}{suffix}".encode()).hexdigest()[:16]
        postgres_server.drop_database(name)
        postgres_server.create_database(name)
        postgres_server.grant_schema(name, "learning_platform", PIPELINE_ROLE, PIPELINE_PASSWORD)
        conn = psycopg.connect(
            postgres_server.conninfo(name, user=PIPELINE_ROLE, password=PIPELINE_PASSWORD), autocommit=True
        )
        migrate_schema(conn)
        opened.append((name, conn))
    yield tuple(conn for _, conn in opened)
    for name, conn in opened:
        conn.close()
        postgres_server.drop_database(name)


window_minutes = st.sampled_from([7, 45, 60, 90, 1440])
# The DAG runs only whole days in a warehouse (test mode has its own), but the stages must not
# depend on it: an earlier run may have covered only the day's first hour.
FIRST_HOUR = Interval(DAY.start, DAY.start + timedelta(hours=1))
earlier_runs = st.lists(
    st.tuples(
        window_minutes,
        st.sampled_from([DAY, FIRST_HOUR]),
        st.sampled_from((*STAGES, "stats")),
        st.sampled_from([150, 180]),
    ),
    min_size=1,
    max_size=3,
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(earlier=earlier_runs, last_window=window_minutes)
# The case that found the defect: a day in 90-minute windows, its first hour again (test mode
# before it had a warehouse of its own), then the day in hours.
@example(earlier=[(90, DAY, "stats", 2000), (60, FIRST_HOUR, "stats", 2400)], last_window=60)
def test_any_sequence_of_runs_of_a_day_ends_in_the_rows_of_one_clean_run(
    simulator, api_client, warehouses, earlier: list[tuple[int, Interval, str, int]], last_window: int
) -> None:
    reruns, clean = warehouses
    for conn in warehouses:
        conn.execute(
            "TRUNCATE learning_platform.raw_attempts, learning_platform.staged_attempts,"
            " learning_platform.staged_rejections, learning_platform.attempts,"
            " learning_platform.quarantined_attempts, learning_platform.landing_batches,"
            " learning_platform.staging_batches, learning_platform.load_batches,"
            " learning_platform.daily_stats CASCADE"
        )
    # Earlier runs saw the source as it was then (a different volume: other records), and
    # stopped wherever a task failed.
    for minutes, interval, stop_after, records_per_day in earlier:
        simulator.configure(records_per_day=records_per_day)
        run(reruns, api_client, minutes, interval=interval, stop_after=stop_after)
    simulator.configure(records_per_day=200)

    run(reruns, api_client, last_window)
    run(clean, api_client, last_window)

    expected = snapshot(clean)
    assert expected["attempts"], "the day must have attempts for the comparison to mean anything"
    assert snapshot(reruns) == expected
