"""The pipeline's own schema ``csv_import``: how its stages hand a run over through the database.

Nothing but small values crosses a task boundary in XCom (a run id); what a run is about (its
target, mode and source), the schema inference chose, the files and their dialects, the chunk
plan, and what each chunk and file ended as, live in the ledger tables of
``sql/migrations/0001_ledgers.sql``. Each stage writes its rows in the transaction that did its
work, so that a retried task finds exactly what its previous attempt committed, and a later
stage reads them back with the functions here.

The file ledger (``csv_import.files``) is what makes imports exactly-once across runs: one row
per target table and source file, whose id is the ``_source_file_id`` of every row the file put
in the target, and whose status says which content (size, fingerprint) the target holds now.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import psycopg

from include.common.migrations import migrate
from include.csv_import.model import (
    Chunk,
    Column,
    ColumnType,
    Dialect,
    FileSchema,
    Reject,
    RejectReason,
    SourceFile,
)
from include.csv_import.table import TableName
from include.csv_import.warehouse import SCHEMA, SQL_DIR, sql

log = logging.getLogger(__name__)


class Mode(StrEnum):
    """What a run does to its target: add the files not imported yet, or become exactly the drop."""

    APPEND = "append"
    REPLACE = "replace"


def migrate_schema(conn: psycopg.Connection) -> list[str]:
    """Create or upgrade the ledger tables; returns the migrations applied now."""
    return migrate(conn, SCHEMA, SQL_DIR / "migrations")


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    dag_run_id: str
    target: TableName
    mode: Mode
    source: str
    published_at: datetime | None
    publish_method: str | None
    publish_note: str | None


@dataclass(frozen=True, slots=True)
class RunFile:
    """A file of a run: where it is, how it is written, which columns its fields fill."""

    id: int
    file: SourceFile
    # None until inference read the file, and for a file it rejected whole.
    dialect: Dialect | None
    # Destination column names of the file's fields, in the file's order (Row.values' order).
    columns: tuple[str, ...]
    # Why inference rejected the whole file (its one reject), or None.
    rejected: Reject | None
    whole_file_reason: str | None
    # What publish decided: 'imported', 'replaced' (a changed file) or 'skipped'; None before.
    outcome: str | None
    outcome_detail: str | None


@dataclass(frozen=True, slots=True)
class PlannedChunk:
    file_id: int
    chunk: Chunk
    done: bool


def start_run(
    conn: psycopg.Connection, *, dag_run_id: str, target: TableName, mode: Mode | str, source: str
) -> Run:
    """The ledger row of this Airflow run and target, created on the first attempt."""
    with conn.transaction():
        (run_id,) = conn.execute(
            sql("upsert_run"),
            {
                "dag_run_id": dag_run_id,
                "target_schema": target.schema,
                "target_table": target.name,
                "mode": Mode(mode).value,
                "source": source,
            },
        ).fetchone()
    return read_run(conn, run_id)


def read_run(conn: psycopg.Connection, run_id: int) -> Run:
    with conn.transaction():
        row = conn.execute(sql("select_run"), {"run_id": run_id}).fetchone()
    if row is None:
        raise LookupError(f"csv_import run {run_id} is not in the ledger")
    run_id, dag_run_id, schema, table, mode, source, published_at, method, note = row
    return Run(run_id, dag_run_id, TableName(schema, table), Mode(mode), source, published_at, method, note)


def record_columns(conn: psycopg.Connection, run_id: int, columns: Sequence[Column]) -> None:
    """Store the run's inferred schema (replacing what an earlier attempt stored)."""
    with conn.transaction(), conn.cursor() as cursor:
        cursor.execute(sql("delete_run_columns"), {"run_id": run_id})
        cursor.executemany(
            sql("insert_run_column"),
            [
                {"run_id": run_id, "position": i, "name": c.name, "header": c.header, "type": c.type.value}
                for i, c in enumerate(columns)
            ],
        )


def read_columns(conn: psycopg.Connection, run_id: int) -> list[Column]:
    with conn.transaction():
        rows = conn.execute(sql("select_run_columns"), {"run_id": run_id}).fetchall()
    return [Column(name, header, ColumnType(type_)) for name, header, type_ in rows]


def record_discovered(
    conn: psycopg.Connection, run_id: int, files: Iterable[SourceFile]
) -> dict[SourceFile, int]:
    """Pin the run's files as discovery found them; returns each file's ledger id.

    The id is the file's for this target across runs (a file seen again keeps it), so that a
    changed file's new rows replace exactly the old rows carrying the same ``_source_file_id``.
    How to read each file is recorded by :func:`record_inference`, once inference has read it.
    """
    run = read_run(conn, run_id)
    ids: dict[SourceFile, int] = {}
    with conn.transaction(), conn.cursor() as cursor:
        for file in files:
            (file_id,) = cursor.execute(
                sql("upsert_file"),
                {
                    "target_schema": run.target.schema,
                    "target_table": run.target.name,
                    "url": file.url,
                    "member": file.member,
                },
            ).fetchone()
            cursor.execute(
                sql("register_run_file"),
                {"run_id": run_id, "file_id": file_id, "size": file.size, "fingerprint": file.fingerprint},
            )
            ids[file] = file_id
    return ids


def record_inference(
    conn: psycopg.Connection,
    run_id: int,
    columns: Sequence[Column] | None,
    schemas: Iterable[FileSchema],
    rejected: Iterable[tuple[SourceFile, Reject]] = (),
) -> None:
    """Store the run's columns, how each file is read, and the files rejected whole, at once.

    ``columns`` None leaves the run's columns as recorded.
    """
    ids = {f.file: f.id for f in read_files(conn, run_id)}
    with conn.transaction(), conn.cursor() as cursor:
        if columns is not None:
            record_columns(conn, run_id, columns)
        for schema in schemas:
            dialect = schema.dialect
            cursor.execute(
                sql("update_run_file_schema"),
                {
                    "run_id": run_id,
                    "file_id": _file_id(ids, schema.file, run_id),
                    "delimiter": dialect.delimiter,
                    "quotechar": dialect.quotechar,
                    "escapechar": dialect.escapechar,
                    "encoding": dialect.encoding,
                    "header": dialect.header,
                    "columns": [column.name for column in schema.columns],
                    "rejected_reason": None,
                    "rejected_detail": None,
                },
            )
        for file, reject in rejected:
            cursor.execute(
                sql("update_run_file_schema"),
                {
                    "run_id": run_id,
                    "file_id": _file_id(ids, file, run_id),
                    "delimiter": None,
                    "quotechar": None,
                    "escapechar": None,
                    "encoding": None,
                    "header": None,
                    "columns": [],
                    "rejected_reason": reject.reason.value,
                    "rejected_detail": reject.detail,
                },
            )


def record_files(
    conn: psycopg.Connection,
    run_id: int,
    files: Iterable[tuple[SourceFile, Dialect, Sequence[str]]],
) -> dict[SourceFile, int]:
    """Discovery and inference of files whose dialect and columns are known: tests' shortcut."""
    files = list(files)
    ids = record_discovered(conn, run_id, [file for file, _, _ in files])
    known = {column.name: column for column in read_columns(conn, run_id)}
    schemas = [
        FileSchema(
            file, dialect, tuple(known.get(name, Column(name, name, ColumnType.TEXT)) for name in names)
        )
        for file, dialect, names in files
    ]
    record_inference(conn, run_id, None, schemas)
    return ids


def read_files(conn: psycopg.Connection, run_id: int) -> list[RunFile]:
    with conn.transaction():
        rows = conn.execute(sql("select_run_files"), {"run_id": run_id}).fetchall()
    return [
        RunFile(
            id=file_id,
            file=SourceFile(url, member, size, fingerprint),
            dialect=None if encoding is None else Dialect(delimiter, quotechar, encoding, header, escapechar),
            columns=tuple(columns or ()),
            rejected=None
            if rejected_reason is None
            else Reject(None, RejectReason(rejected_reason), None, "", rejected_detail),
            whole_file_reason=whole_file_reason,
            outcome=outcome,
            outcome_detail=detail,
        )
        for (
            file_id,
            url,
            member,
            size,
            fingerprint,
            delimiter,
            quotechar,
            escapechar,
            encoding,
            header,
            columns,
            rejected_reason,
            rejected_detail,
            whole_file_reason,
            outcome,
            detail,
        ) in rows
    ]


def already_imported(
    conn: psycopg.Connection, target: TableName, files: Iterable[SourceFile]
) -> set[SourceFile]:
    """The files whose current content the target already holds: an append need not read them.

    Only a shortcut: publish decides again under lock, as another run may publish meanwhile.
    """
    with conn.transaction():
        rows = conn.execute(
            sql("select_imported_files"), {"target_schema": target.schema, "target_table": target.name}
        ).fetchall()
    imported = {(url, member, fingerprint) for url, member, fingerprint in rows}
    return {f for f in files if (f.url, f.member, f.fingerprint) in imported}


def record_plan(
    conn: psycopg.Connection,
    run_id: int,
    chunks: Iterable[Chunk],
    whole_file_reasons: Mapping[SourceFile, str] | None = None,
) -> int:
    """Store the chunk plan (the files must be recorded first); returns the number of chunks.

    ``whole_file_reasons`` says, for a file the planner would not split, why (quoted newlines,
    an escape character, a zip member): the plan says why, and so does the ledger.
    """
    ids = {f.file: f.id for f in read_files(conn, run_id)}
    count = 0
    with conn.transaction(), conn.cursor() as cursor:
        for chunk in chunks:
            cursor.execute(
                sql("upsert_planned_chunk"),
                {
                    "run_id": run_id,
                    "file_id": _file_id(ids, chunk.file, run_id),
                    "number": chunk.number,
                    "start": chunk.start,
                    "end": chunk.end,
                    "first_line": chunk.first_line,
                },
            )
            count += 1
        for file, reason in (whole_file_reasons or {}).items():
            cursor.execute(
                sql("update_whole_file_reason"),
                {"run_id": run_id, "file_id": _file_id(ids, file, run_id), "reason": reason},
            )
    return count


def read_plan(conn: psycopg.Connection, run_id: int) -> list[PlannedChunk]:
    with conn.transaction():
        rows = conn.execute(sql("select_plan"), {"run_id": run_id}).fetchall()
    return [
        PlannedChunk(
            file_id=file_id,
            chunk=Chunk(SourceFile(url, member, size, fingerprint), number, start, end, first_line),
            done=done,
        )
        for file_id, url, member, size, fingerprint, number, start, end, first_line, done in rows
    ]


def _file_id(ids: Mapping[SourceFile, int], file: SourceFile, run_id: int) -> int:
    try:
        return ids[file]
    except KeyError:
        raise LookupError(
            f"{file.name} (fingerprint {file.fingerprint}) is not a file of csv_import run {run_id}: "
            "record the run's files before its plan and chunks"
        ) from None
