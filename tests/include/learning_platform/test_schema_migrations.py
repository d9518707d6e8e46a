"""The pipeline's migrations upgrade a warehouse that already holds published days."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from include.common.migrations import migrate
from include.learning_platform.load import load_interval
from include.learning_platform.warehouse import SCHEMA, SQL_DIR, migrate_schema
from tests.include.learning_platform.stages import DAY, attempts, quarantine, run_stages

MIGRATIONS = SQL_DIR / "migrations"


def _migrate_up_to(conn: psycopg.Connection, last: str, scratch: Path) -> None:
    """Apply the real migration files up to ``last``, as an older release of the pipeline did."""
    scratch.mkdir()
    for path in sorted(MIGRATIONS.glob("*.sql")):
        if path.stem <= last:
            shutil.copy(path, scratch / path.name)
    migrate(conn, SCHEMA, scratch)


def _primary_key(conn: psycopg.Connection, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT a.attname FROM pg_index i"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)"
        " WHERE i.indrelid = %s::regclass AND i.indisprimary"
        " ORDER BY array_position(i.indkey::int2[], a.attnum)",
        (f"{SCHEMA}.{table}",),
    ).fetchall()
    return [name for (name,) in rows]


def test_attempts_are_rekeyed_on_their_source_without_losing_a_published_day(
    simulator, api_client, warehouse_conninfo, tmp_path: Path
) -> None:
    with psycopg.connect(warehouse_conninfo) as conn:
        _migrate_up_to(conn, "0002_daily_stats", tmp_path / "old_release")
        assert _primary_key(conn, "attempts") == ["attempt_id"]
        published = run_stages(conn, api_client)
        rows, quarantined = attempts(conn), quarantine(conn)
        assert len(rows) == published.loaded > 0

        assert migrate_schema(conn) == ["0003_attempts_natural_key"]

        assert _primary_key(conn, "attempts") == ["source_window_start", "source_position"]
        assert attempts(conn) == rows
        assert quarantine(conn) == quarantined
        # The day published before the upgrade is replaced, not doubled, by a rerun after it.
        assert load_interval(conn, DAY, dag_run_id="after_upgrade") == published
        assert attempts(conn) == rows


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
