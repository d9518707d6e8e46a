"""Move a run's staged drop into the target in one transaction, deciding per file under lock.

Until publish, the run's rows are only in its staging table (``csv_import.stage_<run>``):
readers of the target see the previous drop, and a run that fails anywhere leaves it so.
Publish then, in ONE transaction:

1. locks the run's ledger row (two attempts at one run take turns: the second finds it
   published), the target against other publishers (``SHARE ROW EXCLUSIVE``: readers go on),
   then the file ledger rows of the run's files (``FOR UPDATE``, in id order);
2. decides per file against the ledger, now that no one else can change it: in ``append`` mode a
   file whose current content (fingerprint) another run already published is skipped, and the
   result says so; a file that changed replaces exactly its own old rows, found by
   ``_source_file_id``; in ``replace`` mode the target becomes exactly the drop;
3. moves the rows, the cheapest safe way:
   - ``swap``: the staging table becomes the target (drop, rename: catalog changes only), when
     the target is new, empty (append) or replaced, and nothing depends on it by identity
     (views, foreign keys, triggers, indexes, grants, ...: see ``sql/select_swap_blockers.sql``);
   - ``truncate_insert``: a replace of a target something depends on: ``TRUNCATE`` and
     ``INSERT … SELECT``, so views, grants and indexes stay (readers of the target wait for the
     transaction, then see the new drop whole);
   - ``insert_select``: an append into a table that has rows (a changed file's old rows deleted
     first);
   Another run may have added columns to the target meanwhile: they are never swapped away,
   and columns this run staged are added to the target if another run's swap removed them;
4. records the outcome in the file ledger and the run, and drops the staging table.

Two runs publishing the same file at once: the second waits for the first's lock, then finds
the file imported with the same fingerprint and skips it. A retried publish of a run that
committed returns what it recorded. ``ANALYZE`` follows the commit, outside the transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from include.common.failures import PermanentFailure
from include.csv_import.ledger import Mode, read_files, read_run
from include.csv_import.model import SourceFile
from include.csv_import.table import IncompatibleTarget, TableName, target_columns
from include.csv_import.warehouse import SCHEMA, staging_name, staging_table
from include.csv_import.warehouse import sql as query

log = logging.getLogger(__name__)


class ImportIncomplete(PermanentFailure):
    """Some chunks of the run are not imported yet: publishing now would lose their rows."""


class StagingMissing(PermanentFailure):
    """The run's staging table is gone although the run was never published."""


@dataclass(frozen=True, slots=True)
class PublishResult:
    run_id: int
    target: TableName
    # 'swap', 'truncate_insert', 'insert_select', or None when there was nothing to move.
    method: str | None
    # Why this method (what prevented a swap, or why nothing moved).
    note: str
    imported: tuple[str, ...] = ()
    replaced: tuple[str, ...] = ()
    # File name → why it was skipped (another run had already imported this content).
    skipped: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    # The run had been published before (a retried task): nothing was done now.
    already_published: bool = False


@dataclass(frozen=True, slots=True)
class _File:
    id: int
    name: str
    status: str
    published_fingerprint: str | None
    imported_by_run: int | None
    size: int
    fingerprint: str
    rows: int
    rejects: int
    chunks: int
    done: int


def publish(conn: psycopg.Connection, run_id: int) -> PublishResult:
    """Publish the run's staged drop into its target (see the module's docstring)."""
    staging = staging_table(run_id)
    with conn.transaction(), conn.cursor() as cursor:
        (published,) = cursor.execute(query("lock_run"), {"run_id": run_id}).fetchone()
        if published:
            return _recorded(conn, run_id)
        run = read_run(conn, run_id)
        target = run.target
        target_table = sql.Identifier(target.schema, target.name)
        if not _exists(cursor, staging):
            raise StagingMissing(
                f"the staging table {staging.as_string(cursor)} of csv_import run {run_id} is missing "
                "and the run was never published: clear the run's prepare and import tasks "
                "to stage the drop again"
            )
        cursor.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(target_table))
        files = [
            _file(row) for row in cursor.execute(query("select_run_files_for_update"), {"run_id": run_id})
        ]
        _check_complete(run_id, files)

        imported, replaced, skipped = _decide(run.mode, files)
        target_has_more = _compare_columns(cursor, target, run_id)
        rename_first = not _exists(cursor, sql.Identifier(SCHEMA, target.name))
        blockers = _swap_blockers(cursor, target, run_id, rename_first=rename_first)
        if target_has_more:
            blockers.append("it has columns this run's staging table lacks (added by another run)")
        method, note = _choose_method(cursor, run.mode, target, bool(imported or replaced), blockers)
        if method == "swap":
            if skipped:
                cursor.execute(
                    sql.SQL("DELETE FROM {} WHERE _source_file_id = ANY(%(file_ids)s)").format(staging),
                    {"file_ids": [f.id for f in skipped]},
                )
            _swap(cursor, run_id, target, rename_first=rename_first)
        else:
            if method is not None:
                _insert(cursor, method, run_id, target, imported + replaced, replaced)
            cursor.execute(sql.SQL("DROP TABLE {}").format(staging))
        _record(cursor, run_id, run.mode, target, imported, replaced, skipped, method, note)
    rows = sum(f.rows for f in imported + replaced)
    log.info(
        "published csv_import run %d into %s by %s (%s): "
        "%d file(s) imported, %d replaced, %d skipped, %d row(s)",
        run_id,
        target,
        method or "nothing",
        note,
        len(imported),
        len(replaced),
        len(skipped),
        rows,
    )
    for f in skipped:
        log.info("skipped %s: already imported by csv_import run %s", f.name, f.imported_by_run)
    if method is not None:
        # Fresh statistics for the planner; after the commit, so the publish transaction stays short.
        with conn.transaction():
            conn.execute(sql.SQL("ANALYZE {}").format(target_table))
    return PublishResult(
        run_id=run_id,
        target=target,
        method=method,
        note=note,
        imported=tuple(f.name for f in imported),
        replaced=tuple(f.name for f in replaced),
        skipped={f.name: _skip_detail(f) for f in skipped},
        rows=rows,
    )


def _file(row: tuple) -> _File:
    file_id, url, member, status, published, imported_by, size, fingerprint, _columns, *counts = row
    name = SourceFile(url, member, size, fingerprint).name
    return _File(file_id, name, status, published, imported_by, size, fingerprint, *counts)


def _check_complete(run_id: int, files: list[_File]) -> None:
    incomplete = [f for f in files if f.chunks == 0 or f.done < f.chunks]
    if incomplete:
        names = ", ".join(f"{f.name} ({f.done} of {f.chunks} chunk(s))" for f in incomplete[:10])
        raise ImportIncomplete(
            f"csv_import run {run_id} has files not fully imported: {names}"
            f"{f' and {len(incomplete) - 10} more' if len(incomplete) > 10 else ''}; "
            "their import tasks must succeed before publish"
        )


def _decide(mode: Mode, files: list[_File]) -> tuple[list[_File], list[_File], list[_File]]:
    """Split the run's files into (new, changed, already imported)."""
    if mode is Mode.REPLACE:
        return files, [], []
    imported, replaced, skipped = [], [], []
    for f in files:
        if f.status != "imported":
            imported.append(f)
        elif f.published_fingerprint == f.fingerprint:
            skipped.append(f)
        else:
            replaced.append(f)
    return imported, replaced, skipped


def _swap_blockers(
    cursor: psycopg.Cursor, target: TableName, run_id: int, *, rename_first: bool
) -> list[str]:
    """Why swapping the staging table in would lose something; empty when it would not."""
    cursor.execute(query("select_swap_blockers"), {"target": target.identifier.as_string(cursor)})
    blockers = [reason for (reason,) in cursor.fetchall()]
    if not rename_first and _exists(cursor, sql.Identifier(target.schema, staging_name(run_id))):
        blockers.append("its name is taken in both the pipeline's and the target's schema")
    return blockers


def _choose_method(
    cursor: psycopg.Cursor, mode: Mode, target: TableName, anything_new: bool, blockers: list[str]
) -> tuple[str | None, str]:
    """How the drop goes in (see the module's docstring), and why."""
    if mode is Mode.APPEND and not anything_new:
        return None, "every file of the drop was already imported"
    if blockers:
        return (
            "truncate_insert" if mode is Mode.REPLACE else "insert_select",
            f"not swapped: {'; '.join(blockers)}",
        )
    if mode is Mode.REPLACE:
        return "swap", "nothing depends on the target: the staging table was swapped in"
    cursor.execute(
        sql.SQL("SELECT NOT EXISTS (SELECT FROM {})").format(sql.Identifier(target.schema, target.name))
    )
    (empty,) = cursor.fetchone()
    if empty:
        return "swap", "the target was empty and nothing depends on it: the staging table was swapped in"
    return "insert_select", "appended to a table that has rows"


def _insert(
    cursor: psycopg.Cursor,
    method: str,
    run_id: int,
    target: TableName,
    published: list[_File],
    replaced: list[_File],
) -> None:
    target_table = sql.Identifier(target.schema, target.name)
    if method == "truncate_insert":
        cursor.execute(sql.SQL("TRUNCATE {}").format(target_table))
    elif replaced:
        cursor.execute(
            sql.SQL("DELETE FROM {} WHERE _source_file_id = ANY(%(file_ids)s)").format(target_table),
            {"file_ids": [f.id for f in replaced]},
        )
    columns = sql.SQL(", ").join(sql.Identifier(name) for name in _insertable_columns(cursor, target, run_id))
    cursor.execute(
        sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} WHERE _source_file_id = ANY(%(file_ids)s)").format(
            target_table, columns, columns, staging_table(run_id)
        ),
        {"file_ids": [f.id for f in published]},
    )


def _swap(cursor: psycopg.Cursor, run_id: int, target: TableName, *, rename_first: bool) -> None:
    """Drop the target and give the staging table its name and schema: catalog changes only."""
    cursor.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(target.schema, target.name)))
    rename = sql.SQL("ALTER TABLE {} RENAME TO {}")
    move = sql.SQL("ALTER TABLE {} SET SCHEMA {}")
    if rename_first:
        cursor.execute(rename.format(staging_table(run_id), sql.Identifier(target.name)))
        cursor.execute(move.format(sql.Identifier(SCHEMA, target.name), sql.Identifier(target.schema)))
    else:
        cursor.execute(move.format(staging_table(run_id), sql.Identifier(target.schema)))
        cursor.execute(
            rename.format(sql.Identifier(target.schema, staging_name(run_id)), sql.Identifier(target.name))
        )


def _compare_columns(cursor: psycopg.Cursor, target: TableName, run_id: int) -> bool:
    """True if the target has columns the run's staging table lacks (another run added them).

    Such columns must not be swapped away. The other way round cannot happen by our own doing
    (a staging table starts as the target's copy, and a target only gains columns), so a staged
    column the target lacks means a person dropped it: nothing is published over that.
    """
    existing = {c.name for c in target_columns(cursor, target)}
    staged = _staged_columns(cursor, run_id)
    if staged - existing:
        raise IncompatibleTarget(
            f"{target} lost column(s) {', '.join(sorted(staged - existing))} since csv_import run {run_id} "
            "was prepared: rerun the import, which adds them again, or import into another table"
        )
    return bool(existing - staged)


def _insertable_columns(cursor: psycopg.Cursor, target: TableName, run_id: int) -> list[str]:
    # Identity and generated columns are the target's to fill; a column the target gained after
    # the staging table was made has nothing to take from it.
    staged = _staged_columns(cursor, run_id)
    return [c.name for c in target_columns(cursor, target) if not c.generated and c.name in staged]


def _staged_columns(cursor: psycopg.Cursor, run_id: int) -> set[str]:
    return {c.name for c in target_columns(cursor, TableName(SCHEMA, staging_name(run_id)))}


def _record(
    cursor: psycopg.Cursor,
    run_id: int,
    mode: Mode,
    target: TableName,
    imported: list[_File],
    replaced: list[_File],
    skipped: list[_File],
    method: str | None,
    note: str,
) -> None:
    for outcome, group in (("imported", imported), ("replaced", replaced)):
        for f in group:
            cursor.execute(
                query("update_published_file"),
                {
                    "file_id": f.id,
                    "run_id": run_id,
                    "size": f.size,
                    "fingerprint": f.fingerprint,
                    "rows": f.rows,
                    "rejects": f.rejects,
                },
            )
            cursor.execute(
                query("update_run_file_outcome"),
                {"run_id": run_id, "file_id": f.id, "outcome": outcome, "detail": None},
            )
    for f in skipped:
        cursor.execute(
            query("update_run_file_outcome"),
            {"run_id": run_id, "file_id": f.id, "outcome": "skipped", "detail": _skip_detail(f)},
        )
    if mode is Mode.REPLACE:
        cursor.execute(
            query("update_removed_files"),
            {"run_id": run_id, "target_schema": target.schema, "target_table": target.name},
        )
    cursor.execute(query("update_run_published"), {"run_id": run_id, "method": method, "note": note})


def _skip_detail(f: _File) -> str:
    return f"already imported with the same content by csv_import run {f.imported_by_run}"


def _recorded(conn: psycopg.Connection, run_id: int) -> PublishResult:
    run = read_run(conn, run_id)
    files = read_files(conn, run_id)
    with conn.transaction():
        (rows,) = conn.execute(query("select_run_rows"), {"run_id": run_id}).fetchone()
    return PublishResult(
        run_id=run_id,
        target=run.target,
        method=run.publish_method,
        note=run.publish_note or "",
        imported=tuple(f.file.name for f in files if f.outcome == "imported"),
        replaced=tuple(f.file.name for f in files if f.outcome == "replaced"),
        skipped={f.file.name: f.outcome_detail or "" for f in files if f.outcome == "skipped"},
        rows=rows,
        already_published=True,
    )


def _exists(cursor: psycopg.Cursor, table: sql.Identifier) -> bool:
    return cursor.execute(query("select_table_exists"), {"table": table.as_string(cursor)}).fetchone()[0]


def discard_staging(conn: psycopg.Connection, run_id: int) -> bool:
    """Drop the staging table of a run that will not be published; True if there was one.

    For a run given up on (failed for good, or superseded): its staged rows would otherwise stay
    in ``csv_import`` until someone drops them. The ledgers keep the run's account.
    """
    staging = staging_table(run_id)
    with conn.transaction(), conn.cursor() as cursor:
        (published,) = cursor.execute(query("lock_run"), {"run_id": run_id}).fetchone()
        if published:
            return False
        existed = _exists(cursor, staging)
        cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(staging))
    if existed:
        log.info("dropped the staging table of csv_import run %d", run_id)
    return existed
