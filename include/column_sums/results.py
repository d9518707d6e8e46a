"""The results table ``column_sums.results``: written by the task, read by the REST API.

One row per request, keyed by the task id (the DAG run's id). The task writes its row in one
statement, sums or problem, so a reader sees either no row or a whole result, and a retried or
cleared run replaces its row instead of adding one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from include.common.migrations import migrate
from include.common.postgres import read_sql

SCHEMA = "column_sums"
SQL_DIR = Path(__file__).parent / "sql"


class Outcome(StrEnum):
    SUMS = "sums"  # the file was summed: ``result`` is ColumnSums.to_json()
    PROBLEM = "problem"  # it could not be: ``result`` is CsvProblem.to_json(), {code, message}


@dataclass(frozen=True, slots=True)
class StoredResult:
    task_id: str
    location: str
    outcome: Outcome
    result: dict[str, Any]
    source_size: int | None
    source_version: str | None
    rows: int | None
    bytes_read: int | None
    resumes: int
    seconds: float
    try_number: int
    computed_at: datetime | None = None


def migrate_schema(conn: psycopg.Connection) -> list[str]:
    """Create or upgrade the ``column_sums`` schema; returns the migrations applied now."""
    return migrate(conn, SCHEMA, SQL_DIR / "migrations")


def save_result(conn: psycopg.Connection, stored: StoredResult) -> None:
    """Write ``stored`` as its task's only row (replacing an earlier try's) and commit."""
    with conn.transaction():
        conn.execute(
            read_sql(SQL_DIR, "upsert_result"),
            {
                "task_id": stored.task_id,
                "location": stored.location,
                "outcome": stored.outcome.value,
                "result": Jsonb(stored.result),
                "source_size": stored.source_size,
                "source_version": stored.source_version,
                "rows": stored.rows,
                "bytes_read": stored.bytes_read,
                "resumes": stored.resumes,
                "seconds": stored.seconds,
                "try_number": stored.try_number,
            },
        )


def load_result(conn: psycopg.Connection, task_id: str) -> StoredResult | None:
    """The stored result of ``task_id``; None while there is none (or before the first request)."""
    return _load(conn, "select_result", {"task_id": task_id}).get(task_id)


def load_results(conn: psycopg.Connection, task_ids: list[str]) -> dict[str, StoredResult]:
    """The stored results of those of ``task_ids`` that have one, by task id (one query)."""
    return _load(conn, "select_results", {"task_ids": task_ids})


def _load(conn: psycopg.Connection, query: str, params: dict[str, Any]) -> dict[str, StoredResult]:
    with conn.cursor(row_factory=dict_row) as cursor:
        try:
            rows = cursor.execute(read_sql(SQL_DIR, query), params).fetchall()
        except psycopg.errors.UndefinedTable:
            # No request has run yet anywhere, so there is no schema: no result either.
            conn.rollback()
            return {}
    return {row["task_id"]: StoredResult(**{**row, "outcome": Outcome(row["outcome"])}) for row in rows}
