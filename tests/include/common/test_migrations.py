"""Migrations apply once each, in order, atomically; an edited migration is refused."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from include.common.migrations import MigrationError, migrate
from include.learning_platform.warehouse import migrate_schema


def test_the_pipeline_schema_migrates_once_then_is_a_no_op(warehouse_conninfo) -> None:
    with psycopg.connect(warehouse_conninfo) as conn:
        assert migrate_schema(conn) == [
            "0001_create_schema",
            "0002_daily_stats",
            "0003_attempts_natural_key",
            "0004_stage_ledgers_and_brin",
            "0007_partition_landing_by_day",
        ]
        assert migrate_schema(conn) == []
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'learning_platform' ORDER BY 1"
        ).fetchall()
    assert [t for (t,) in tables] == [
        "attempts",
        "daily_course_stats",
        "daily_quality_checks",
        "daily_quarantine_reasons",
        "daily_stats",
        "landing_batches",
        "load_batches",
        "quarantined_attempts",
        "raw_attempts",
        "staged_attempts",
        "staged_rejections",
        "staging_batches",
    ]


def test_new_migrations_apply_in_order_and_a_failing_one_changes_nothing(
    warehouse_conninfo, tmp_path: Path
) -> None:
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE first (id int);")
    with psycopg.connect(warehouse_conninfo) as conn:
        assert migrate(conn, "demo", tmp_path) == ["0001_first"]
        (tmp_path / "0002_second.sql").write_text("CREATE TABLE second (id int);")
        (tmp_path / "0003_broken.sql").write_text("CREATE TABLE third (id int); SELECT broken(;")

        with pytest.raises(psycopg.errors.SyntaxError):
            migrate(conn, "demo", tmp_path)

        assert conn.execute("SELECT to_regclass('second')").fetchone() == (None,)
        (tmp_path / "0003_broken.sql").write_text("CREATE TABLE third (id int);")
        assert migrate(conn, "demo", tmp_path) == ["0002_second", "0003_broken"]


def test_an_applied_migration_that_was_edited_is_refused(warehouse_conninfo, tmp_path: Path) -> None:
    migration = tmp_path / "0001_first.sql"
    migration.write_text("CREATE TABLE first (id int);")
    with psycopg.connect(warehouse_conninfo) as conn:
        migrate(conn, "demo", tmp_path)
        migration.write_text("CREATE TABLE first (id bigint);")

        with pytest.raises(MigrationError, match="changed after it was applied"):
            migrate(conn, "demo", tmp_path)
