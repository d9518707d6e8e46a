"""The pipeline's migrations upgrade a warehouse that already holds published days."""

from __future__ import annotations

import hashlib
import shutil
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from devservices.postgres import LocalPostgres
from include.common.migrations import migrate
from include.learning_platform.landing_retention import purge_old_landing
from include.learning_platform.load import LoadResult, StagingIncomplete, load_interval
from include.learning_platform.partitions import PARTITIONED, day_partitions, partition_name
from include.learning_platform.warehouse import SCHEMA, SQL_DIR, migrate_schema
from tests.include.learning_platform.stages import DAY, attempts, quarantine, run_stages

MIGRATIONS = SQL_DIR / "migrations"


# What the pipeline writes, in an order its foreign keys accept.
PIPELINE_TABLES = (
    "raw_attempts",
    "staged_attempts",
    "staged_rejections",
    "attempts",
    "quarantined_attempts",
    "load_batches",
)


def _old_release_warehouse(
    server: LocalPostgres, name: str, last_migration: str, published: psycopg.Connection, scratch: Path
) -> psycopg.Connection:
    """A warehouse migrated up to ``last_migration`` holding the rows of ``published``.

    An older release would have written those very rows: the stages' output has not changed,
    only the schema around it. They are copied column by column, as far as the old schema has
    the columns (an identity column it generates is left to it).
    """
    server.drop_database(name)
    server.create_database(name)
    conn = psycopg.connect(server.conninfo(name))
    scratch.mkdir()
    for path in sorted(MIGRATIONS.glob("*.sql")):
        if path.stem <= last_migration:
            shutil.copy(path, scratch / path.name)
    migrate(conn, SCHEMA, scratch)
    for table in PIPELINE_TABLES:
        names = [column for column in _columns(conn, table) if column in _columns(published, table)]
        columns = sql.SQL(", ").join(map(sql.Identifier, names))
        target = sql.Identifier(SCHEMA, table)
        with (
            published.cursor().copy(
                sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT (FORMAT BINARY)").format(columns, target)
            ) as source,
            conn.cursor().copy(
                sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(target, columns)
            ) as sink,
        ):
            for chunk in source:
                sink.write(chunk)
    conn.commit()
    return conn


def _migrations_after(last_migration: str) -> list[str]:
    """The migrations an upgrade from ``last_migration`` applies: every later one on disk, in order."""
    return sorted(path.stem for path in MIGRATIONS.glob("*.sql") if path.stem > last_migration)


def _columns(conn: psycopg.Connection, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s AND is_identity = 'NO' ORDER BY ordinal_position",
        (SCHEMA, table),
    ).fetchall()
    return [name for (name,) in rows]


def _primary_key(conn: psycopg.Connection, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT a.attname FROM pg_index i"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)"
        " WHERE i.indrelid = %s::regclass AND i.indisprimary"
        " ORDER BY array_position(i.indkey::int2[], a.attnum)",
        (f"{SCHEMA}.{table}",),
    ).fetchall()
    return [name for (name,) in rows]


@pytest.fixture
def old_release(postgres_server, warehouse, api_client, request, tmp_path: Path):
    """Open a warehouse of an older release (up to a migration) holding one published day."""
    published = run_stages(warehouse, api_client)
    warehouse.commit()
    opened: list[psycopg.Connection] = []
    name = "old_" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:16]

    def open_at(last_migration: str) -> tuple[psycopg.Connection, LoadResult]:
        conn = _old_release_warehouse(postgres_server, name, last_migration, warehouse, tmp_path / "release")
        opened.append(conn)
        return conn, published

    yield open_at
    for conn in opened:
        conn.close()
    postgres_server.drop_database(name)


def test_attempts_are_rekeyed_on_their_source_without_losing_a_published_day(old_release) -> None:
    conn, published = old_release("0002_daily_stats")
    assert _primary_key(conn, "attempts") == ["attempt_id"]
    rows, quarantined = attempts(conn), quarantine(conn)
    assert len(rows) == published.loaded > 0

    assert migrate_schema(conn) == _migrations_after("0002_daily_stats")

    assert _primary_key(conn, "attempts") == ["source_window_start", "source_position"]
    assert attempts(conn) == rows
    assert quarantine(conn) == quarantined
    # The day published before the upgrade is replaced, not doubled, by a rerun after it.
    assert load_interval(conn, DAY, dag_run_id="after_upgrade") == published
    assert attempts(conn) == rows


def test_published_days_get_their_stage_ledgers_and_load_alone_reruns_them(old_release) -> None:
    conn, published = old_release("0003_attempts_natural_key")
    rows = attempts(conn)

    assert migrate_schema(conn) == _migrations_after("0003_attempts_natural_key")

    landing = conn.execute(f"SELECT records, dag_run_id FROM {SCHEMA}.landing_batches").fetchall()
    assert landing == [(published.fetched, "test_run")]
    staging = conn.execute(
        f"SELECT checked, valid, flagged, rejected FROM {SCHEMA}.staging_batches"
    ).fetchall()
    assert staging == [(published.fetched, published.loaded, published.flagged, published.quarantined)]
    assert load_interval(conn, DAY, dag_run_id="after_upgrade") == published
    assert attempts(conn) == rows
    (method,) = conn.execute(
        "SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam WHERE c.oid = %s::regclass",
        (f"{SCHEMA}.attempts_created_at_idx",),
    ).fetchone()
    assert method == "brin"


def test_a_landing_not_wholly_staged_gets_no_verdict_and_load_refuses_it(old_release) -> None:
    conn, _ = old_release("0003_attempts_natural_key")
    conn.execute(
        f"DELETE FROM {SCHEMA}.staged_rejections"
        f" WHERE position = (SELECT min(position) FROM {SCHEMA}.staged_rejections)"
    )
    conn.commit()

    migrate_schema(conn)

    assert conn.execute(f"SELECT count(*) FROM {SCHEMA}.staging_batches").fetchone() == (0,)
    with pytest.raises(StagingIncomplete, match="run the validate task"):
        load_interval(conn, DAY, dag_run_id="after_upgrade")


def test_the_natural_key_refuses_a_second_copy_of_an_attempt(simulator, api_client, warehouse) -> None:
    run_stages(warehouse, api_client)

    with pytest.raises(psycopg.errors.UniqueViolation):
        warehouse.execute(
            f"INSERT INTO {SCHEMA}.attempts (user_id, oauth_consumer_key, lis_result_sourcedid,"
            " lis_outcome_service_url, is_correct, attempt_type, created_at, defects,"
            " source_window_start, source_position, dag_run_id)"
            " SELECT user_id, oauth_consumer_key, lis_result_sourcedid, lis_outcome_service_url,"
            " is_correct, attempt_type, created_at, defects, source_window_start, source_position, 'again'"
            f" FROM {SCHEMA}.attempts LIMIT 1"
        )


def _stage_tables(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    return {
        table: conn.execute(
            sql.SQL("SELECT * FROM {} ORDER BY window_start, position").format(sql.Identifier(SCHEMA, table))
        ).fetchall()
        for table in PARTITIONED
    }


def test_a_populated_warehouse_is_partitioned_by_day_in_place(old_release) -> None:
    conn, published = old_release("0003_attempts_natural_key")
    rows = _stage_tables(conn)
    assert all(rows.values()), "precondition: the day's landing and staging are there"
    # The migration's names and bounds must not follow the session's date format or time zone.
    conn.execute("SET datestyle = 'SQL, DMY'")
    conn.execute("SET timezone = 'Asia/Kathmandu'")

    assert migrate_schema(conn) == _migrations_after("0003_attempts_natural_key")

    conn.execute("SET datestyle = 'ISO, MDY'")  # psycopg reads timestamps in ISO only
    assert _stage_tables(conn) == rows
    with conn.cursor() as cursor:
        partitions = day_partitions(cursor)
    assert list(partitions) == [DAY.day]
    assert [p.name for p in partitions[DAY.day]] == [partition_name(table, DAY.day) for table in PARTITIONED]
    for table in PARTITIONED:
        assert _primary_key(conn, table) == ["window_start", "position"]
        (bounds,) = conn.execute(
            "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE oid = %s::regclass",
            (f"{SCHEMA}.{partition_name(table, DAY.day)}",),
        ).fetchone()
        # The day's UTC midnight to the next, shown in the session's time zone.
        assert bounds == "FOR VALUES FROM ('2026-11-22 05:45:00+05:45') TO ('2026-11-23 05:45:00+05:45')"
    # The landing load published is recorded: retention may drop it once it is old enough.
    (landing_id,) = conn.execute(f"SELECT landing_id FROM {SCHEMA}.landing_batches").fetchone()
    assert conn.execute(f"SELECT landing_id FROM {SCHEMA}.load_batches").fetchall() == [(landing_id,)]
    conn.commit()
    assert purge_old_landing(conn, DAY.day + timedelta(days=15), dry_run=True).dropped == [DAY.day]
    # The pipeline goes on writing the partitioned tables: a rerun of the day replaces its rows.
    assert load_interval(conn, DAY, dag_run_id="after_upgrade") == published


@pytest.mark.parametrize(
    ("landed_s", "staged_s", "published"),
    [(-2, -1, True), (1, 2, False), (-2, 1, False)],
    ids=["landed-validated-loaded", "landed-again-after-the-load", "validated-again-after-the-load"],
)
def test_a_landing_counts_as_published_when_load_ran_after_it_and_its_verdict(
    old_release, landed_s: int, staged_s: int, published: bool
) -> None:
    """Rows of an earlier release: when in doubt, the landing counts as not published, and is kept."""
    conn, _ = old_release("0004_stage_ledgers_and_brin")
    (loaded_at,) = conn.execute(f"SELECT loaded_at FROM {SCHEMA}.load_batches").fetchone()
    conn.execute(
        f"INSERT INTO {SCHEMA}.landing_batches (interval_start, interval_end, records, dag_run_id, landed_at)"
        " SELECT interval_start, interval_end, fetched, 'earlier', %s FROM learning_platform.load_batches",
        (loaded_at + timedelta(seconds=landed_s),),
    )
    conn.execute(
        f"INSERT INTO {SCHEMA}.staging_batches"
        " (interval_start, interval_end, landing_id, checked, valid, flagged, rejected, staged_at)"
        " SELECT b.interval_start, b.interval_end, l.landing_id, b.fetched, b.loaded, b.flagged,"
        " b.quarantined, %s"
        f" FROM {SCHEMA}.load_batches AS b JOIN {SCHEMA}.landing_batches AS l USING (interval_start)",
        (loaded_at + timedelta(seconds=staged_s),),
    )
    conn.commit()

    migrate_schema(conn)

    recorded = conn.execute(
        f"SELECT b.landing_id = l.landing_id FROM {SCHEMA}.load_batches AS b"
        f" LEFT JOIN {SCHEMA}.landing_batches AS l USING (interval_start)"
    ).fetchall()
    assert recorded == [(True if published else None,)]
    conn.commit()
    dropped = purge_old_landing(conn, DAY.day + timedelta(days=15), dry_run=True).dropped
    assert dropped == ([DAY.day] if published else [])
