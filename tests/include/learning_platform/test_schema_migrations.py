"""The pipeline's migrations upgrade a warehouse that already holds published days."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from devservices.postgres import LocalPostgres
from include.common.migrations import migrate
from include.learning_platform.load import LoadResult, StagingIncomplete, load_interval
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


def versions_after(version: str) -> list[str]:
    """The migrations an upgrade from ``version`` applies: every later one on disk, in order."""
    return sorted(path.stem for path in MIGRATIONS.glob("*.sql") if path.stem > version)


def test_attempts_are_rekeyed_on_their_source_without_losing_a_published_day(old_release) -> None:
    conn, published = old_release("0002_daily_stats")
    assert _primary_key(conn, "attempts") == ["attempt_id"]
    rows, quarantined = attempts(conn), quarantine(conn)
    assert len(rows) == published.loaded > 0

    assert migrate_schema(conn) == versions_after("0002_daily_stats")
    assert versions_after("0002_daily_stats")[:2] == [
        "0003_attempts_natural_key",
        "0004_stage_ledgers_and_brin",
    ]

    assert _primary_key(conn, "attempts") == ["source_window_start", "source_position"]
    assert attempts(conn) == rows
    assert quarantine(conn) == quarantined
    # The day published before the upgrade is replaced, not doubled, by a rerun after it.
    assert load_interval(conn, DAY, dag_run_id="after_upgrade") == published
    assert attempts(conn) == rows


def test_published_days_get_their_stage_ledgers_and_load_alone_reruns_them(old_release) -> None:
    conn, published = old_release("0003_attempts_natural_key")
    rows = attempts(conn)

    assert migrate_schema(conn) == versions_after("0003_attempts_natural_key")
    assert versions_after("0003_attempts_natural_key")[0] == "0004_stage_ledgers_and_brin"

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
