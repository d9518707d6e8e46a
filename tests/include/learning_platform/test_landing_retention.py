"""Retention drops the landing and staging of old published days, and nothing else.

Days are run through the real stages (simulator over HTTP, PostgreSQL); what retention keeps and
drops is read back from the catalog and the tables.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg import sql

from include.common.intervals import Interval
from include.learning_platform import landing_retention
from include.learning_platform.api import LearningPlatformClient
from include.learning_platform.extract import extract_interval
from include.learning_platform.landing_retention import purge_old_landing
from include.learning_platform.partitions import PARTITIONED, day_partitions, days_of, partition_name
from include.learning_platform.stats import compute_daily_stats
from include.learning_platform.validate import validate_interval
from include.learning_platform.warehouse import lock_day, migrate_schema
from tests.conftest import CLIENT, CLIENT_KEY
from tests.include.learning_platform.stages import HOUR, attempts, quarantine, run_stages

pytestmark = pytest.mark.timeout(300)

OLD = [date(2026, 10, 1), date(2026, 10, 2)]  # published, before the oldest kept day
UNPUBLISHED = date(2026, 10, 3)  # landed and validated, never loaded
RELANDED = date(2026, 10, 4)  # published, then landed again and not loaded since
RECENT = date(2026, 10, 20)  # published, within the retention period
OLDEST_KEPT = date(2026, 10, 10)
# A small day: the rules do not care how many records a day has.
RECORDS_PER_DAY = 240


def day(d: date) -> Interval:
    return Interval.for_day(d)


def figures(conn: psycopg.Connection) -> tuple[list[tuple], ...]:
    """What readers of the pipeline see: never touched by retention."""
    stats = conn.execute(
        "SELECT stats_date, fetched, loaded, quarantined, unique_users, runs, submits "
        "FROM learning_platform.daily_stats ORDER BY 1"
    ).fetchall()
    batches = conn.execute(
        "SELECT interval_start, interval_end, fetched, loaded, quarantined "
        "FROM learning_platform.load_batches ORDER BY 1"
    ).fetchall()
    return attempts(conn), quarantine(conn), stats, batches


def landing(conn: psycopg.Connection, d: date) -> dict[str, list[tuple]]:
    """The day's rows in the landing and staging tables, by table."""
    query = sql.SQL(
        "SELECT * FROM {} WHERE window_start >= %s AND window_start < %s ORDER BY window_start, position"
    )
    return {
        table: conn.execute(
            query.format(sql.Identifier("learning_platform", table)), (day(d).start, day(d).end)
        ).fetchall()
        for table in PARTITIONED
    }


def partitioned_days(conn: psycopg.Connection) -> dict[date, list[str]]:
    with conn.cursor() as cursor:
        found = day_partitions(cursor)
    conn.commit()
    return {d: [partition.name for partition in partitions] for d, partitions in found.items()}


@pytest.fixture
def warehouse_of_days(simulator, api_client, warehouse) -> psycopg.Connection:
    simulator.configure(records_per_day=RECORDS_PER_DAY)
    for d in [*OLD, RELANDED, RECENT]:
        run_stages(warehouse, api_client, day(d), dag_run_id=f"run_{d}")
        compute_daily_stats(warehouse, day(d), dag_run_id=f"run_{d}")
    extract_interval(warehouse, api_client, day(RELANDED), window=HOUR, dag_run_id="relanded")
    extract_interval(warehouse, api_client, day(UNPUBLISHED), window=HOUR, dag_run_id="unpublished")
    validate_interval(warehouse, day(UNPUBLISHED))
    return warehouse


def test_a_dry_run_drops_nothing_and_says_what_it_would_drop(warehouse_of_days) -> None:
    conn = warehouse_of_days
    before = partitioned_days(conn), figures(conn), [landing(conn, d) for d in OLD]

    purge = purge_old_landing(conn, OLDEST_KEPT, dry_run=True)

    assert purge.summary() == {
        "oldest_kept_day": "2026-10-10",
        "dry_run": True,
        "days": 2,
        "first_day": "2026-10-01",
        "last_day": "2026-10-02",
        "bytes": purge.bytes,
        "unpublished_days": ["2026-10-03", "2026-10-04"],
        "busy_days": [],
    }
    assert purge.bytes > 0
    assert (partitioned_days(conn), figures(conn), [landing(conn, d) for d in OLD]) == before


def test_only_old_published_days_go_and_the_published_rows_stay(warehouse_of_days) -> None:
    conn = warehouse_of_days
    published = figures(conn)
    kept = {d: landing(conn, d) for d in (UNPUBLISHED, RELANDED, RECENT)}
    assert all(kept[d]["raw_attempts"] for d in kept), "precondition: every kept day has a landing"

    purge = purge_old_landing(conn, OLDEST_KEPT, dry_run=False)

    assert purge.dropped == OLD
    assert purge.unpublished == [UNPUBLISHED, RELANDED]
    assert sorted(partitioned_days(conn)) == [UNPUBLISHED, RELANDED, RECENT]
    assert partitioned_days(conn)[RECENT] == [partition_name(table, RECENT) for table in PARTITIONED]
    assert {d: landing(conn, d) for d in kept} == kept
    assert figures(conn) == published
    ledgers = conn.execute(
        "SELECT (interval_start AT TIME ZONE 'UTC')::date FROM learning_platform.landing_batches UNION ALL "
        "SELECT (interval_start AT TIME ZONE 'UTC')::date FROM learning_platform.staging_batches ORDER BY 1"
    ).fetchall()
    assert [d for (d,) in ledgers] == [UNPUBLISHED, UNPUBLISHED, RELANDED, RELANDED, RECENT, RECENT]
    # A second run finds nothing more to drop.
    assert purge_old_landing(conn, OLDEST_KEPT, dry_run=False).dropped == []


def test_an_old_day_run_again_after_retention_lands_and_publishes_the_same_rows(
    warehouse_of_days, api_client
) -> None:
    conn = warehouse_of_days
    first = OLD[0]
    published = figures(conn)
    before = landing(conn, first)
    purge_old_landing(conn, OLDEST_KEPT, dry_run=False)
    assert first not in partitioned_days(conn)

    run_stages(conn, api_client, day(first), dag_run_id=f"run_{first}")

    assert figures(conn) == published
    assert _without_run_columns(landing(conn, first)) == _without_run_columns(before)
    # Published again with the same landing and verdict: the next retention drops it again.
    assert purge_old_landing(conn, OLDEST_KEPT, dry_run=False).dropped == [first]


def test_a_day_in_use_by_a_run_is_left_for_the_retry(
    warehouse_of_days, monkeypatch, warehouse_conninfo
) -> None:
    conn = warehouse_of_days
    monkeypatch.setattr(landing_retention, "LOCK_TIMEOUT", "200ms")
    with psycopg.connect(warehouse_conninfo) as run_of_the_day, run_of_the_day.cursor() as cursor:
        lock_day(cursor, day(OLD[0]))

        purge = purge_old_landing(conn, OLDEST_KEPT, dry_run=False)

    assert purge.busy == [OLD[0]]
    assert purge.dropped == [OLD[1]]
    assert OLD[0] in partitioned_days(conn)
    assert purge_old_landing(conn, OLDEST_KEPT, dry_run=False).dropped == [OLD[0]]


def test_runs_of_different_days_create_their_partitions_at_once(simulator, warehouse_conninfo) -> None:
    """Each run attaches its day's partitions while the other's transaction writes the same tables."""
    simulator.configure(records_per_day=RECORDS_PER_DAY)
    days = [date(2026, 11, d) for d in range(1, 7)]
    errors: list[BaseException] = []

    def run(d: date) -> None:
        try:
            with (
                psycopg.connect(warehouse_conninfo) as conn,
                LearningPlatformClient(simulator.base_url, CLIENT, CLIENT_KEY) as client,
            ):
                run_stages(conn, client, day(d), dag_run_id=f"run_{d}")
        except BaseException as error:  # reported below, with the day
            errors.append(error)

    with psycopg.connect(warehouse_conninfo) as conn:
        migrate_schema(conn)
    threads = [threading.Thread(target=run, args=(d,)) for d in days]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(240)

    assert errors == []
    with psycopg.connect(warehouse_conninfo) as conn:
        assert sorted(partitioned_days(conn)) == days
        loaded = conn.execute("SELECT count(*) FROM learning_platform.load_batches").fetchone()
    assert loaded == (len(days),)


def test_a_window_starting_at_midnight_lands_in_the_next_days_partition(
    simulator, api_client, warehouse
) -> None:
    simulator.configure(records_per_day=RECORDS_PER_DAY * 24)
    midnight = datetime(2026, 11, 23, tzinfo=UTC)
    across = Interval(midnight - HOUR, midnight + HOUR)
    assert days_of(across) == [date(2026, 11, 22), date(2026, 11, 23)]
    assert days_of(day(date(2026, 11, 22))) == [date(2026, 11, 22)]

    extract_interval(warehouse, api_client, across, window=HOUR, dag_run_id="midnight")
    validate_interval(warehouse, across)

    placed = warehouse.execute(
        "SELECT tableoid::regclass::text, min(window_start), max(window_start), count(*) "
        "FROM learning_platform.raw_attempts GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert [(table, low, high) for table, low, high, _ in placed] == [
        ("learning_platform.raw_attempts_20261122", midnight - HOUR, midnight - HOUR),
        ("learning_platform.raw_attempts_20261123", midnight, midnight),
    ]
    assert all(count > 0 for *_, count in placed)


def test_a_rerun_of_a_day_on_partitions_replaces_its_landing_and_staging(
    simulator, api_client, warehouse
) -> None:
    simulator.configure(records_per_day=RECORDS_PER_DAY)
    d = date(2026, 11, 22)
    run_stages(warehouse, api_client, day(d), dag_run_id="first")
    first = landing(warehouse, d)

    run_stages(warehouse, api_client, day(d), dag_run_id="second")

    assert _without_run_columns(landing(warehouse, d)) == _without_run_columns(first)
    assert sorted(partitioned_days(warehouse)) == [d]
    assert warehouse.execute(
        "SELECT DISTINCT dag_run_id FROM learning_platform.raw_attempts_20261122"
    ).fetchall() == [("second",)]


def _without_run_columns(tables: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    """The rows without which run landed them and when (the landing's last two columns)."""
    return {**tables, "raw_attempts": [row[:4] for row in tables["raw_attempts"]]}


def test_the_days_of_an_interval_are_utc_days_whatever_its_time_zone() -> None:
    late_in_utc = datetime(2026, 11, 22, 23, 30, tzinfo=UTC).astimezone(ZoneInfo("Europe/Moscow"))
    assert late_in_utc.day == 23

    assert days_of(Interval(late_in_utc, late_in_utc + timedelta(minutes=30))) == [date(2026, 11, 22)]
