"""Where the learning platform pipeline keeps its tables, and the SQL it runs on them.

Two warehouses, one schema. A full day goes to the warehouse of ``learning_platform_db``; a
test-mode run (the day's first hour) goes to the scratch warehouse of
``learning_platform_test_db``, where it can land, load, compute and report the hour exactly as a
real run would without ever replacing or mixing with a day's published rows: a test-mode run
for a date that was already processed leaves the real day as it was. The two connections must
name different databases: the first run to migrate a warehouse claims it for its kind
(``warehouse_purpose``), and a run of the other kind is refused there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from include.common.failures import ConfigurationError
from include.common.intervals import Interval
from include.common.migrations import migrate
from include.common.postgres import lock_interval, lock_resource, read_sql

DB_CONN_ID = "learning_platform_db"
TEST_DB_CONN_ID = "learning_platform_test_db"
SCHEMA = "learning_platform"
SQL_DIR = Path(__file__).parent / "sql"

# 0001 used to open with `CREATE SCHEMA IF NOT EXISTS learning_platform`, which PostgreSQL 15+
# refuses to a role without CREATE on the database even when the schema exists; the migration
# runner now creates the schema only when it is missing. Warehouses that applied the old text
# have the same objects.
_SUPERSEDED_CHECKSUMS = {
    "0001_create_schema": "6ee4aaf5f98768417ebbe1990cb93295bd81bc97750accc9ce018d55fbbde790",
}


class WrongWarehouse(ConfigurationError):
    """The run's connection reaches the warehouse of the other kind of run."""


def warehouse_conn_id(*, test_mode: bool) -> str:
    """The Airflow connection of the warehouse a run writes to."""
    return TEST_DB_CONN_ID if test_mode else DB_CONN_ID


def sql(name: str) -> str:
    """The statement kept in ``sql/<name>.sql``."""
    return read_sql(SQL_DIR, name)


@contextmanager
def open_binary_copy(cursor: psycopg.Cursor, name: str, types: tuple[str, ...]) -> Iterator[psycopg.Copy]:
    """The ``COPY ... FROM STDIN (FORMAT BINARY)`` of ``sql/<name>.sql``, rows taken by ``write_row``.

    ``types`` are the statement's columns' types, in its order: a binary COPY must send each
    value in its column's exact type, and declared once they spare psycopg a dumper lookup per
    value. The statement is named, not passed, so that only SQL from this package's files runs.
    """
    with cursor.copy(sql(name)) as copy:
        copy.set_types(types)
        yield copy


def migrate_schema(conn: psycopg.Connection) -> list[str]:
    """Create or upgrade the pipeline's tables; returns the migrations applied now."""
    return migrate(conn, SCHEMA, SQL_DIR / "migrations", superseded=_SUPERSEDED_CHECKSUMS)


def claim_warehouse(conn: psycopg.Connection, *, test_mode: bool, dag_run_id: str) -> None:
    """Refuse to write test-mode results into the days' warehouse, or days into the scratch one."""
    purpose = "test_mode" if test_mode else "days"
    with conn.transaction():
        claimed, claimed_by = conn.execute(
            sql("claim_warehouse_purpose"), {"purpose": purpose, "dag_run_id": dag_run_id}
        ).fetchone()
    if claimed != purpose:
        conn_id = warehouse_conn_id(test_mode=test_mode)
        raise WrongWarehouse(
            f"the Airflow connection '{conn_id}' reaches the warehouse that holds "
            f"{'the published days' if claimed == 'days' else 'test-mode runs'} (claimed by run "
            f"{claimed_by}); test mode must write to a scratch database of its own: point "
            f"'{TEST_DB_CONN_ID}' at a database other than the one of '{DB_CONN_ID}'"
        )


def interval_params(interval: Interval, **extra: object) -> dict[str, object]:
    """Query parameters naming the interval, plus any others a statement needs."""
    return {"start": interval.start, "end": interval.end, **extra}


def lock_day(cursor: psycopg.Cursor, interval: Interval) -> None:
    """Make concurrent writers of the same day take turns (until the transaction ends)."""
    lock_interval(cursor, SCHEMA, interval)


def lock_report(cursor: psycopg.Cursor) -> None:
    """Make publishers of the report take turns (until the transaction ends).

    Each then reads what is published (the sheet's dates, the warehouse's history) after the one
    before it wrote, so that a backfill's runs never replace a newer snapshot with an older one.
    """
    lock_resource(cursor, f"{SCHEMA}.report")
