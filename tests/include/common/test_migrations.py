"""Migrations apply once each, in order, atomically; an edited migration is refused; the runner
needs no privilege beyond the pipeline's own schema."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from include.common.migrations import MigrationError, migrate
from include.learning_platform.warehouse import SCHEMA, migrate_schema

ALL_MIGRATIONS = [
    "0001_create_schema",
    "0002_daily_stats",
    "0003_attempts_natural_key",
    "0004_stage_ledgers_and_brin",
    "0005_boundary_copies_and_warehouse_purpose",
    "0006_report_emails",
    "0007_partition_landing_by_day",
]


def test_the_pipeline_schema_migrates_once_then_is_a_no_op(warehouse_conninfo) -> None:
    with psycopg.connect(warehouse_conninfo) as conn:
        assert migrate_schema(conn)[: len(ALL_MIGRATIONS)] == ALL_MIGRATIONS
        assert migrate_schema(conn) == []
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'learning_platform' AND table_type = 'BASE TABLE' ORDER BY 1"
        ).fetchall()
    assert {"attempts", "raw_attempts", "schema_migrations", "warehouse_purpose"} <= {t for (t,) in tables}


def test_the_pipeline_role_needs_nothing_but_its_schema(warehouse_conninfo) -> None:
    with psycopg.connect(warehouse_conninfo) as conn:
        # The fixture's role is what a DBA grants: prove it is that and no more.
        superuser, createdb, create_on_db, create_on_public = conn.execute(
            "SELECT rolsuper, rolcreatedb, has_database_privilege(current_database(), 'CREATE'),"
            " has_schema_privilege('public', 'CREATE') FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert (superuser, createdb, create_on_db, create_on_public) == (False, False, False, False)

        migrate_schema(conn)
        # Run again on an up-to-date schema: it must not try to create what exists.
        assert migrate_schema(conn) == []
        assert conn.execute("SELECT to_regclass('public.schema_migrations')").fetchone() == (None,)


def test_a_missing_schema_the_role_may_not_create_names_the_grant(warehouse_conninfo, tmp_path: Path) -> None:
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE first (id int);")
    with (
        psycopg.connect(warehouse_conninfo) as conn,
        pytest.raises(
            MigrationError, match=r"ask a DBA to run CREATE SCHEMA demo AUTHORIZATION learning_platform_etl"
        ),
    ):
        migrate(conn, "demo", tmp_path)


def test_new_migrations_apply_in_order_and_a_failing_one_changes_nothing(
    warehouse_conninfo, tmp_path: Path
) -> None:
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE first (id int);")
    with psycopg.connect(warehouse_conninfo) as conn:
        assert migrate(conn, SCHEMA, tmp_path) == ["0001_first"]
        # Unqualified names land in the pipeline's schema.
        assert conn.execute("SELECT to_regclass('learning_platform.first')").fetchone() != (None,)
        (tmp_path / "0002_second.sql").write_text("CREATE TABLE second (id int);")
        (tmp_path / "0003_broken.sql").write_text("CREATE TABLE third (id int); SELECT broken(;")

        with pytest.raises(psycopg.errors.SyntaxError):
            migrate(conn, SCHEMA, tmp_path)

        assert conn.execute("SELECT to_regclass('learning_platform.second')").fetchone() == (None,)
        (tmp_path / "0003_broken.sql").write_text("CREATE TABLE third (id int);")
        assert migrate(conn, SCHEMA, tmp_path) == ["0002_second", "0003_broken"]


def test_an_applied_migration_that_was_edited_is_refused(warehouse_conninfo, tmp_path: Path) -> None:
    migration = tmp_path / "0001_first.sql"
    migration.write_text("CREATE TABLE first (id int);")
    with psycopg.connect(warehouse_conninfo) as conn:
        migrate(conn, SCHEMA, tmp_path)
        migration.write_text("CREATE TABLE first (id bigint);")

        with pytest.raises(MigrationError, match="changed after it was applied"):
            migrate(conn, SCHEMA, tmp_path)


def test_a_superseded_text_is_accepted_once_and_its_ledger_brought_forward(
    warehouse_conninfo, tmp_path: Path
) -> None:
    migration = tmp_path / "0001_first.sql"
    migration.write_text("CREATE TABLE first (id int); -- old wording")
    with psycopg.connect(warehouse_conninfo) as conn:
        migrate(conn, SCHEMA, tmp_path)
        (old_checksum,) = conn.execute("SELECT checksum FROM learning_platform.schema_migrations").fetchone()
        migration.write_text("CREATE TABLE first (id int);")

        assert migrate(conn, SCHEMA, tmp_path, superseded={"0001_first": old_checksum}) == []
        # Brought forward: the new text is now the recorded one, the old one no longer needed.
        assert migrate(conn, SCHEMA, tmp_path) == []


def test_a_warehouse_of_the_public_ledger_era_is_adopted(warehouse_conninfo, admin_conninfo) -> None:
    """Before issue 17 the ledger was public.schema_migrations and 0001 created the schema itself."""
    with psycopg.connect(admin_conninfo) as admin:
        admin.execute(
            "CREATE TABLE public.schema_migrations (component text, version text, checksum text,"
            " applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (component, version))"
        )
        admin.execute("GRANT SELECT ON public.schema_migrations TO learning_platform_etl")
    with psycopg.connect(warehouse_conninfo) as conn:
        migrate_schema(conn)
        recorded = conn.execute(
            "SELECT version, checksum FROM learning_platform.schema_migrations ORDER BY 1"
        ).fetchall()
        conn.execute("DROP TABLE learning_platform.schema_migrations")
        conn.commit()
    legacy = [("learning_platform", version, checksum) for version, checksum in recorded]
    # 0001's text as the old runner recorded it.
    legacy[0] = (*legacy[0][:2], "6ee4aaf5f98768417ebbe1990cb93295bd81bc97750accc9ce018d55fbbde790")
    with psycopg.connect(admin_conninfo) as admin:
        admin.cursor().executemany("INSERT INTO public.schema_migrations VALUES (%s, %s, %s)", legacy)

    with psycopg.connect(warehouse_conninfo) as conn:
        assert migrate_schema(conn) == []
        assert (
            conn.execute(
                "SELECT version, checksum FROM learning_platform.schema_migrations ORDER BY 1"
            ).fetchall()
            == recorded
        )
