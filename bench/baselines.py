"""The ways a user might otherwise load the day's attempts, on the very rows our load published.

The rows are exported once to CSV; each way loads them into a fresh table of the same columns
(no indexes, no constraints: the alternatives' best case). ``psql \\copy`` is the practical
limit; row-by-row INSERT with a commit per row is what the original script did; pandas'
``DataFrame.to_sql`` is what a notebook would do. The slow ones run on a sample and are
extrapolated to the whole day, and say so.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from bench.services import checkpoint
from devservices.postgres import HOST, LocalPostgres
from include.common.intervals import Interval

log = logging.getLogger("bench")

SCHEMA = "bench"
COLUMNS = (
    "user_id",
    "oauth_consumer_key",
    "lis_result_sourcedid",
    "lis_outcome_service_url",
    "is_correct",
    "attempt_type",
    "created_at",
)
_TARGET_COLUMNS = sql.SQL(
    "user_id text NOT NULL, oauth_consumer_key text, lis_result_sourcedid text, "
    "lis_outcome_service_url text, is_correct boolean, attempt_type text NOT NULL, "
    "created_at timestamptz NOT NULL"
)
_DAY_ROWS = sql.SQL(
    "SELECT {columns} FROM learning_platform.attempts "
    "WHERE created_at >= {start} AND created_at < {end} ORDER BY source_window_start, source_position"
)


@dataclass(frozen=True, slots=True)
class Baseline:
    """One way of loading the day's ``rows``; ``sample`` rows were timed (all if equal)."""

    name: str
    rows: int
    sample: int
    sample_s: float
    skipped: str | None = None  # why it was not measured

    @property
    def rows_per_s(self) -> float:
        return self.sample / self.sample_s if self.sample_s > 0 else 0.0

    @property
    def seconds(self) -> float:
        """Time for all ``rows``: measured, or extrapolated from the sample."""
        return self.rows / self.rows_per_s if self.rows_per_s else 0.0

    @property
    def note(self) -> str:
        if self.skipped:
            return f"not measured: {self.skipped}"
        if self.sample < self.rows:
            return f"extrapolated from a sample of {self.sample:,}"
        return "measured on all rows"


def export_day(conninfo: str, interval: Interval, path: Path) -> int:
    """Write the interval's published attempts to ``path`` as CSV; returns the row count."""
    query = _day_rows(interval)
    rows = 0
    with psycopg.connect(conninfo) as conn, conn.cursor() as cursor, path.open("wb") as out:
        copy_out = sql.SQL("COPY ({query}) TO STDOUT WITH (FORMAT csv)").format(query=query)
        with cursor.copy(copy_out) as copy:
            for chunk in copy:
                out.write(chunk)
        cursor.execute(sql.SQL("SELECT count(*) FROM ({query}) AS day").format(query=query))
        (rows,) = cursor.fetchone()
    return rows


def psql_copy(server: LocalPostgres, dbname: str, csv_path: Path, rows: int) -> Baseline:
    """``psql -c "\\copy ... FROM file"``, timed from the outside, start-up of psql included."""
    psql = find_psql()
    if psql is None:
        return Baseline("psql \\copy", rows, 0, 0.0, skipped="no psql found in PATH or /usr/lib/postgresql")
    table = _fresh_table(server.conninfo(dbname), "psql_copy")
    path_literal = "'" + str(csv_path).replace("'", "''") + "'"
    command = f"\\copy {SCHEMA}.{table} ({', '.join(COLUMNS)}) FROM {path_literal} WITH (FORMAT csv)"
    env = {
        **os.environ,
        "PGHOST": HOST,
        "PGPORT": str(server.port),
        "PGUSER": server.user,
        "PGPASSWORD": server.password or "",
        "PGDATABASE": dbname,
    }
    started = time.perf_counter()
    completed = subprocess.run(
        [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", command], env=env, capture_output=True, check=False
    )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        reason = completed.stderr.decode(errors="replace").strip()
        raise RuntimeError(f"{psql} \\copy failed (exit code {completed.returncode}): {reason}")
    _check_count(server.conninfo(dbname), table, rows)
    return Baseline("psql \\copy", rows, rows, elapsed)


def row_by_row(conninfo: str, interval: Interval, rows: int, sample: int) -> Baseline:
    """One INSERT and one COMMIT per row, as the original script did."""
    sample_rows = _sample(conninfo, interval, sample)
    table = _fresh_table(conninfo, "row_by_row")
    insert = sql.SQL("INSERT INTO {table} ({columns}) VALUES ({values})").format(
        table=sql.Identifier(SCHEMA, table),
        columns=sql.SQL(", ").join(map(sql.Identifier, COLUMNS)),
        values=sql.SQL(", ").join(sql.Placeholder() * len(COLUMNS)),
    )
    with psycopg.connect(conninfo) as conn:
        started = time.perf_counter()
        for row in sample_rows:
            conn.execute(insert, row)
            conn.commit()
        elapsed = time.perf_counter() - started
    _check_count(conninfo, table, len(sample_rows))
    return Baseline("row-by-row INSERT + COMMIT", rows, len(sample_rows), elapsed)


def pandas_to_sql(url: str, conninfo: str, interval: Interval, rows: int, sample: int) -> Baseline:
    """``DataFrame.to_sql`` through SQLAlchemy and psycopg 3, default method, into the same columns."""
    name = "pandas DataFrame.to_sql"
    try:
        import pandas as pd  # deferred: a development dependency only this baseline needs
        import sqlalchemy
    except ImportError as error:
        return Baseline(name, rows, 0, 0.0, skipped=f"{error.name} is not installed (make setup)")
    frame = pd.DataFrame(_sample(conninfo, interval, sample), columns=list(COLUMNS))
    table = _fresh_table(conninfo, "pandas_to_sql")
    engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        started = time.perf_counter()
        frame.to_sql(table, engine, schema=SCHEMA, if_exists="append", index=False)
        elapsed = time.perf_counter() - started
    finally:
        engine.dispose()
    _check_count(conninfo, table, len(frame))
    return Baseline(name, rows, len(frame), elapsed)


def find_psql() -> str | None:
    found = shutil.which("psql")
    if found:
        return found
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"), key=_version_key, reverse=True)
    return candidates[0] if candidates else None


def _version_key(path: str) -> int:
    version = Path(path).parent.parent.name
    return int(version) if version.isdigit() else 0


def _day_rows(interval: Interval) -> sql.Composed:
    return _DAY_ROWS.format(
        columns=sql.SQL(", ").join(map(sql.Identifier, COLUMNS)),
        start=sql.Literal(interval.start),
        end=sql.Literal(interval.end),
    )


def _sample(conninfo: str, interval: Interval, limit: int) -> list[tuple]:
    query = sql.SQL("{query} LIMIT {limit}").format(query=_day_rows(interval), limit=sql.Literal(limit))
    with psycopg.connect(conninfo) as conn:
        return conn.execute(query).fetchall()


def _fresh_table(conninfo: str, table: str) -> str:
    with psycopg.connect(conninfo) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
        target = sql.Identifier(SCHEMA, table)
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
        conn.execute(sql.SQL("CREATE TABLE {} ({})").format(target, _TARGET_COLUMNS))
    checkpoint(conninfo)
    return table


def _check_count(conninfo: str, table: str, expected: int) -> None:
    with psycopg.connect(conninfo) as conn:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(SCHEMA, table))
        (count,) = conn.execute(query).fetchone()
    if count != expected:
        raise RuntimeError(f"{SCHEMA}.{table} holds {count} rows after loading {expected}")
