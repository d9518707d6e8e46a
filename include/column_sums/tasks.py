"""The body of ``csv_column_sums``' task: a :class:`SumsSpec` in, the results row written, a few figures out.

The file is read once, as a stream, and its sums go to ``column_sums.results`` under the run's
id, the task id the REST API answers with; XCom carries only a handful of figures for the log
and the UI. A file that cannot be summed (no header, fewer than 10 columns, not found, outside
the root ...) is an answer for whoever asked, not a failure of the service: its problem is
stored as the result and the task succeeds, so no operator is alerted for someone else's typo.
What retrying can heal (S3 failing past the stream's own resumes, the warehouse down) raises,
and Airflow retries the task; a retry reads the file again and replaces the row.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from include.column_sums import results
from include.column_sums.problems import CsvProblem
from include.column_sums.results import Outcome, StoredResult
from include.column_sums.settings import DAG_ID, SumsSpec
from include.column_sums.storage import open_source
from include.column_sums.sums import sum_columns
from include.common.failures import no_retry_on_permanent_failure
from include.common.postgres import airflow_postgres

log = logging.getLogger(__name__)


@no_retry_on_permanent_failure
def sum_file(spec: SumsSpec) -> dict[str, Any]:
    """Sum ``spec.location``'s every 10th column and store the result (or the file's problem)."""
    # Connect and migrate first: a warehouse that is down fails the try before the file is read.
    with airflow_postgres(spec.conn_id, application_name=f"{DAG_ID}.sum_file") as conn:
        applied = results.migrate_schema(conn)
        if applied:
            log.info("column_sums schema: applied %s", ", ".join(applied))
        stored = compute(spec)
        results.save_result(conn, stored)
    if stored.outcome is Outcome.PROBLEM:
        log.warning(
            "%s cannot be summed (%s): %s", spec.location, stored.result["code"], stored.result["message"]
        )
    else:
        log.info(
            "%s: %s rows, %d columns summed, %.1f MB in %.1f s, %d resumed downloads",
            spec.location,
            f"{stored.rows:,}",
            len(stored.result["columns"]),
            (stored.bytes_read or 0) / 1e6,
            stored.seconds,
            stored.resumes,
        )
    return {
        "task_id": spec.task_id,
        "outcome": stored.outcome.value,
        "rows": stored.rows,
        "problem": stored.result["code"] if stored.outcome is Outcome.PROBLEM else None,
        "resumes": stored.resumes,
        "seconds": stored.seconds,
    }


def compute(spec: SumsSpec) -> StoredResult:
    """Read and sum the file; a :class:`CsvProblem` becomes the stored answer, other errors raise."""
    started = time.perf_counter()
    size = version = None
    resumes = 0
    try:
        with open_source(spec.location, local_root=spec.local_root, aws_conn_id=spec.aws_conn_id) as source:
            size, version = source.info.size, source.info.version
            try:
                sums = sum_columns(source.stream, processes=spec.processes)
            finally:
                resumes = source.resumes
    except CsvProblem as problem:
        return _stored(spec, Outcome.PROBLEM, problem.to_json(), started, size, version, resumes)
    return _stored(
        spec, Outcome.SUMS, sums.to_json(), started, size, version, resumes, sums.rows, sums.bytes_read
    )


def _stored(
    spec: SumsSpec,
    outcome: Outcome,
    result: dict[str, Any],
    started: float,
    size: int | None,
    version: str | None,
    resumes: int,
    rows: int | None = None,
    bytes_read: int | None = None,
) -> StoredResult:
    return StoredResult(
        task_id=spec.task_id,
        location=spec.location,
        outcome=outcome,
        result=result,
        source_size=size,
        source_version=version,
        rows=rows,
        bytes_read=bytes_read,
        resumes=resumes,
        seconds=round(time.perf_counter() - started, 3),
        try_number=spec.try_number,
    )
