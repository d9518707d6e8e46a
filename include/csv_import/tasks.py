"""The bodies of the ``csv_folder_import`` tasks: an :class:`ImportSpec` in, a few counts out.

Each function opens the destination database, finds the run's ledger row (created by the first
task, found again by every later one and by retries), does its stage, records the outcome in the
pipeline's ledger tables in the transaction that did the work, and returns a few counts for
XCom. Files, columns, dialects and the chunk plan pass from task to task through those tables;
rows pass from the source straight into PostgreSQL's COPY. A failure that retrying cannot fix (a
``PermanentFailure``) fails its task at once: see ``include.common.failures``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import psycopg

from include.common.alerts import check_alerts_can_be_sent
from include.common.failures import ConfigurationError, PermanentFailure, no_retry_on_permanent_failure
from include.common.postgres import airflow_postgres
from include.csv_import import ledger, planning, sources, verify
from include.csv_import import publish as publishing
from include.csv_import.assets import IMPORTS, table_asset
from include.csv_import.dialect import DialectError
from include.csv_import.importer import import_chunk as stage_chunk
from include.csv_import.inference import InferenceError
from include.csv_import.inference import infer as infer_schema
from include.csv_import.model import Chunk, FileSchema, Reject, Row
from include.csv_import.plain import PlainRecords, read_chunk_plain
from include.csv_import.spec import ImportSpec
from include.csv_import.table import create_staging, prepare_target, table_exists

if TYPE_CHECKING:
    from airflow.sdk.types import OutletEventAccessorsProtocol

log = logging.getLogger(__name__)


def destination(spec: ImportSpec) -> AbstractContextManager[psycopg.Connection]:
    """The destination database of the run, where the pipeline's ledger lives too."""
    return airflow_postgres(spec.conn_id, application_name=spec.session_name)


def _run(conn: psycopg.Connection, spec: ImportSpec) -> ledger.Run:
    return ledger.start_run(
        conn, dag_run_id=spec.run_id, target=spec.table, mode=spec.mode, source=spec.source
    )


@no_retry_on_permanent_failure
def migrate(spec: ImportSpec) -> dict[str, Any]:
    """Refuse a run nobody would hear of failing; create or upgrade the ledger; register the run."""
    check_alerts_can_be_sent()
    with destination(spec) as conn:
        applied = ledger.migrate_schema(conn)
        run = _run(conn, spec)
    log.info("run %d imports %s into %s (%s)", run.id, spec.source, spec.table, spec.mode)
    return {"run": run.id, "migrations_applied": applied}


@no_retry_on_permanent_failure
def discover(spec: ImportSpec) -> dict[str, Any]:
    """Pin the files of the drop; in append mode, leave out those already imported unchanged."""
    try:
        found = sources.discover(spec.source, spec.pattern, conn_id=spec.storage_conn_id)
    except sources.SourceError as error:
        raise PermanentFailure(str(error)) from None
    with destination(spec) as conn:
        run = _run(conn, spec)
        unchanged = (
            ledger.already_imported(conn, spec.table, found) if spec.mode is ledger.Mode.APPEND else set()
        )
        files = [file for file in found if file not in unchanged]
        ledger.record_discovered(conn, run.id, files)
    counts = {
        "files_found": len(found),
        "already_imported": len(unchanged),
        "to_import": len(files),
        "bytes_to_import": sum(file.size for file in files),
    }
    log.info(
        "%d file(s) match %s under %s: %d to import (%s bytes), %d already imported unchanged",
        len(found),
        spec.pattern,
        spec.source,
        len(files),
        f"{counts['bytes_to_import']:,}",
        len(unchanged),
    )
    return counts


@no_retry_on_permanent_failure
def infer(spec: ImportSpec) -> dict[str, Any]:
    """Read each file's dialect and types from a bounded sample; unite them into the table's columns."""
    with destination(spec) as conn:
        run = _run(conn, spec)
        files = [entry.file for entry in ledger.read_files(conn, run.id)]
        try:
            inference = infer_schema(
                files,
                conn_id=spec.storage_conn_id,
                dialect=spec.dialect,
                column_types=spec.column_types,
                max_rejected_share=spec.max_rejected_share,
            )
        except (InferenceError, DialectError) as error:
            raise ConfigurationError(str(error)) from None
        ledger.record_inference(
            conn,
            run.id,
            inference.columns,
            inference.files,
            [(rejected.file, rejected.reject) for rejected in inference.rejected],
        )
    for rejected in inference.rejected:
        log.warning("%s is rejected whole: %s", rejected.file.name, rejected.reject.detail)
    return {
        "columns": {column.name: column.type.value for column in inference.columns},
        "files_rejected_whole": len(inference.rejected),
    }


@no_retry_on_permanent_failure
def prepare(spec: ImportSpec) -> dict[str, Any]:
    """Create the table or add the drop's new columns; create the run's staging table."""
    with destination(spec) as conn:
        run = _run(conn, spec)
        columns = ledger.read_columns(conn, run.id)
        if columns:
            prepared = prepare_target(conn, spec.table, columns)
            outcome = {"created": prepared.created, "columns_added": list(prepared.added)}
        elif table_exists(conn, spec.table):
            # Nothing new (an append of files already in), or every file rejected whole: the
            # table stays as it is; the run still records its rejects and publishes nothing.
            outcome = {"created": False, "columns_added": []}
        else:
            raise PermanentFailure(
                f"no file of {spec.source} matching {spec.pattern} could be read, so {spec.table} cannot "
                "be created: infer_schema's log says why each file was rejected whole"
            )
        create_staging(conn, run.id, spec.table)
    return outcome


@no_retry_on_permanent_failure
def plan(spec: ImportSpec) -> list[dict[str, Any]]:
    """Split the files into chunks; a file rejected whole gets its reject now, in a chunk of its own.

    Returns the chunks still to import, as the mapped ``import_chunk``'s arguments: the ledger's
    key of each and a label for the UI.
    """
    with destination(spec) as conn:
        run = _run(conn, spec)
        files = ledger.read_files(conn, run.id)

        def plan_entry(entry: ledger.RunFile) -> planning.Plan:
            if entry.rejected is not None:
                return planning.whole(entry.file, f"rejected whole: {entry.rejected.reason}")
            return planning.plan_file(
                entry.file, entry.dialect, chunk_bytes=spec.chunk_bytes, conn_id=spec.storage_conn_id
            )

        # A big file is read whole to find where to split it: files are read side by side.
        with ThreadPoolExecutor(sources.PARALLEL_READS) as pool:
            plans = list(pool.map(plan_entry, files))
        rejected: list[tuple[Chunk, Reject]] = []
        for entry, file_plan in zip(files, plans, strict=True):
            log.info("%s: %s", entry.file.name, file_plan.reason)
            if entry.rejected is not None:
                rejected.append((file_plan.chunks[0], entry.rejected))
        ledger.record_plan(
            conn,
            run.id,
            [chunk for file_plan in plans for chunk in file_plan.chunks],
            {p.file: p.reason for p in plans if len(p.chunks) == 1},
        )
        for chunk, reject in rejected:
            stage_chunk(conn, run.id, chunk, [reject])
        pending = [planned for planned in ledger.read_plan(conn, run.id) if not planned.done]
    # Biggest first: the slots then finish close together, rather than one slot importing the
    # last big chunk while the others idle (mapped tasks start in the order of their index).
    pending.sort(key=lambda planned: _size(planned.chunk), reverse=True)
    counts = {p.file: len(p.chunks) for p in plans}
    return [
        {
            "file_id": planned.file_id,
            "number": planned.chunk.number,
            "label": _label(planned.chunk, counts.get(planned.chunk.file, 1)),
        }
        for planned in pending
    ]


def _size(chunk: Chunk) -> int:
    return (chunk.end if chunk.end is not None else chunk.file.size) - chunk.start


def _label(chunk: Chunk, of: int) -> str:
    name = chunk.file.member or chunk.file.url.rsplit("/", 1)[-1]
    return name if of == 1 else f"{name} [{chunk.number + 1}/{of}]"


@no_retry_on_permanent_failure
def import_chunk(spec: ImportSpec, file_id: int, number: int) -> dict[str, Any]:
    """Read one chunk as a stream and stage its rows and rejects, in one transaction."""
    started = time.perf_counter()
    with destination(spec) as conn:
        run = _run(conn, spec)
        planned = next(
            (p for p in ledger.read_plan(conn, run.id) if (p.file_id, p.chunk.number) == (file_id, number)),
            None,
        )
        if planned is None:
            raise PermanentFailure(
                f"chunk {number} of file {file_id} is not in the plan of run {run.id}: clear the run from "
                "plan_chunks"
            )
        entry = next(f for f in ledger.read_files(conn, run.id) if f.id == file_id)
        by_name = {column.name: column for column in ledger.read_columns(conn, run.id)}
        schema = FileSchema(entry.file, entry.dialect, tuple(by_name[name] for name in entry.columns))
        result = stage_chunk(conn, run.id, planned.chunk, _items(planned.chunk, schema, spec.storage_conn_id))
    seconds = time.perf_counter() - started
    return {
        "rows": result.rows,
        "plain_rows": result.plain,
        "rejects": result.rejects,
        "skipped": result.skipped,
        "seconds": round(seconds, 3),
    }


def _items(chunk: Chunk, schema: FileSchema, conn_id: str | None) -> Iterator[Row | Reject | PlainRecords]:
    # A generator: the file is opened only if the importer finds the chunk still to do.
    try:
        with sources.open_chunk(chunk.file, chunk.start, chunk.end, conn_id=conn_id) as stream:
            yield from read_chunk_plain(stream, chunk, schema)
    except sources.SourceChanged as error:
        raise PermanentFailure(str(error)) from None


@no_retry_on_permanent_failure
def publish(spec: ImportSpec, outlet_events: OutletEventAccessorsProtocol) -> dict[str, Any]:
    """Gate on the rejected share, publish the drop in one transaction, verify, announce it."""
    with destination(spec) as conn:
        run = _run(conn, spec)
        verify.check_rejected_share(conn, run.id, spec.max_rejected_share)
        result = publishing.publish(conn, run.id)
        summary = verify.verify_run(conn, run.id)
        database = conn.info.dbname
    log.info("%s", summary.describe())
    log.info("published by %s: %s", result.method, result.note)
    extra = summary.as_asset_extra()
    if summary.files:
        outlet_events[IMPORTS].add(
            table_asset(spec.conn_id, database, spec.table.schema, spec.table.name), extra=extra
        )
    else:
        # Downstream DAGs run when the table changed, not for a run that found nothing new.
        log.info("nothing was published: no asset event")
    return extra
