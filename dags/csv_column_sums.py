"""
### CSV column sums: every 10th column of a CSV file on S3 or local disk, summed on request

Each run is one request of the REST API `/column-sums` (a plugin of Airflow's own API server:
see `plugins/column_sums_api.py` and the README): `POST /column-sums/tasks` with a file's
location creates a run whose id is the request's task id, the run's task sums the file on a
worker, and `GET /column-sums/tasks/<task id>` answers with the stored result. Runs can also be
triggered from this form with a `location`.

| task | what it does | writes |
|---|---|---|
| `sum_file` | reads the file once as a stream (S3 downloads resumed from the last byte read; a file replaced mid-read is refused, not mixed) and sums its 10th, 20th, 30th … columns exactly | one row of `column_sums.results`, keyed by the run id |

**Which columns.** The 10th, 20th, 30th … (1-based), named by the header, the file's first
non-blank line. Per column: the exact decimal sum, and the counts of numeric, blank and
non-numeric cells with the first non-numeric ones (row, line, value). A file that cannot be
summed (empty, no header, fewer than 10 columns, an unreadable encoding, an unclosed quote, not
found, outside the local root) is answered with that problem, `{code, message}`, and the task
succeeds: it is the requester's to fix, and nobody on call is alerted.

**Where files come from** (the Variable `csv_column_sums`, JSON): `local_root` (absolute; a
location without `s3://` is relative to it, and `..` or a symbolic link out of it is refused),
`aws_conn_id` (default `aws_default`), `connection` (the results' Postgres, default
`warehouse_db`), `processes` (per file, default 1).

**Why one task.** A request is one read of one file, and its answer is awaited: a separate
schema task would add a worker round trip to every request for a migration that is a no-op
after the first. `sum_file` runs the migrations itself (an advisory lock keeps concurrent
first requests from racing).

**Scale.** Runs have no logical date, so any number of requests can be made at once; up to
`max_active_runs` run together, spread over the workers by the executor (Celery in production),
and the rest wait queued. A retried task reads the file again and replaces its row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pendulum
from airflow.sdk import Param, dag, task

from include.common.dag_defaults import default_args

if TYPE_CHECKING:
    from airflow.sdk import TaskInstance
    from airflow.sdk.types import DagRunProtocol

# Requests that compute at the same time, across all workers. Each holds a worker slot, one core
# and one warehouse connection while its file is read; more wait queued, and the API counts them.
MAX_ACTIVE_REQUESTS = 16


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # A paused service leaves every request queued forever: this DAG is on from its first parse.
    is_paused_upon_creation=False,
    max_active_runs=MAX_ACTIVE_REQUESTS,
    default_args=default_args(owner="data-platform"),
    tags=["on_request"],
    description="Sums every 10th column of one CSV file on S3 or local disk; a run per REST request.",
    doc_md=__doc__,
    params={
        "location": Param(
            type="string",
            minLength=1,
            maxLength=1024,
            title="File",
            description="s3://bucket/path/file.csv, or a path relative to the configured local root.",
        ),
    },
)
def csv_column_sums() -> None:
    @task(multiple_outputs=False)
    def sum_file(params: dict[str, Any], dag_run: DagRunProtocol, ti: TaskInstance) -> dict:
        from include.column_sums import tasks
        from include.column_sums.settings import SumsSpec

        return tasks.sum_file(SumsSpec.from_airflow(params, run_id=dag_run.run_id, try_number=ti.try_number))

    sum_file()


csv_column_sums()
