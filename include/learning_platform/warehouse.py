"""Where the learning platform pipeline keeps its tables, and the SQL it runs on them."""

from __future__ import annotations

from pathlib import Path

import psycopg

from include.common.intervals import Interval
from include.common.migrations import migrate
from include.common.postgres import lock_interval, lock_resource, read_sql

DB_CONN_ID = "learning_platform_db"
SCHEMA = "learning_platform"
SQL_DIR = Path(__file__).parent / "sql"


def sql(name: str) -> str:
    """The statement kept in ``sql/<name>.sql``."""
    return read_sql(SQL_DIR, name)


def migrate_schema(conn: psycopg.Connection) -> list[str]:
    """Create or upgrade the pipeline's tables; returns the migrations applied now."""
    return migrate(conn, SCHEMA, SQL_DIR / "migrations")


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
