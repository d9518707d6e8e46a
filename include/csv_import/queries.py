"""The pipeline's SQL, kept in ``sql/*.sql``; identifiers are filled in by psycopg, never as text."""

from __future__ import annotations

from pathlib import Path

from psycopg import sql as pgsql

from include.common.postgres import read_sql

SQL_DIR = Path(__file__).parent / "sql"


def sql(name: str) -> str:
    """The statement kept in ``sql/<name>.sql``."""
    return read_sql(SQL_DIR, name)


def statement(name: str, /, **identifiers: pgsql.Composable) -> pgsql.Composed:
    """``sql/<name>.sql`` with its ``{placeholders}`` filled with identifiers or SQL fragments."""
    return pgsql.SQL(sql(name)).format(**identifiers)
