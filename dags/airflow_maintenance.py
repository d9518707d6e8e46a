"""
### Airflow maintenance: log, metadata and landing retention

Keeps Airflow's own disk and database, and the learning platform's landing tables, from growing
without end. Every day at 03:00 UTC (after the nightly pipelines) three independent tasks delete
what is older than the retention periods; a failure of one does not stop the others.

| task | what it deletes | how |
|---|---|---|
| `delete_old_logs` | log files under `[logging] base_log_folder` last modified before the cutoff (task logs, and the dag processor's and scheduler's when they live there), then directories left empty | walks the folder; never follows or deletes symlinks, never removes the folder itself, leaves fresh empty directories to the tasks that just made them |
| `clean_metadata` | rows of the metadata database older than the cutoff: dag runs, task instances and their history, XComs, audit log, jobs, import errors, asset events, triggers… | `airflow db clean --skip-archive --error-on-cleanup-failure` on every table it knows except `dag` |
| `drop_old_landing` | the learning platform's landing (`raw_attempts`, each day's API answer verbatim) and staging (`staged_attempts`, `staged_rejections`) of UTC days before the cutoff's day, once `load` has published the day | drops the day's partitions (one per table and UTC day) and its `landing_batches` / `staging_batches` rows; never touches `attempts`, the quarantine or the figures |

**Cutoffs** are counted back from the run's data interval end (its logical date), never
from the clock, so a retry or rerun deletes exactly what the first try did. Each task
returns a small summary (counts, bytes, rows per table) and logs a few example paths.

**Why these defaults.** `log_retention_days` = **30**: a month covers the usual look back
(an incident review, a backfill of last week, a monthly report gone wrong); the original
script kept 3 days, which loses the evidence over a long weekend. `metadata_retention_days`
= **90**: the grid, task durations and rerun history of a quarter; it is longer than log
retention because a task instance whose log is gone still says when it ran and how it
ended, while a log file whose task instance is gone can no longer be reached from the UI.
`landing_retention_days` = **14**: two weeks of days that can be validated and loaded again
without asking the API (about 1.2 GB a day at 1M attempts); a published day needs its landing
no longer, as `attempts` and the quarantine (rejected records verbatim) hold what readers use.
A day whose landing `load` has not published (landed again since, or never loaded) is kept
however old, and named in the log: run `learning_platform_etl` for it, or leave it.
`airflow db clean` always keeps the latest scheduled run of every DAG (the scheduler needs
it to continue); manual runs have no such protection.

**Dry run** (`dry_run`): every task only reports — the files that would be deleted (count,
bytes, examples), `db clean --dry-run`'s row counts per table, and the days whose landing would
be dropped (count, first and last, bytes) and the old days kept because not published.

**Connection.** Airflow 3 forbids tasks to reach the metadata database (the worker replaces
`sql_alchemy_conn` in a task's environment with `airflow-db-not-allowed:///`), so the
database is granted explicitly through the connection **`airflow_metadata_db`** (type
`postgres`, `mysql`, or `sqlite` with the file path as host; extras `sqlalchemy_scheme`,
e.g. `postgresql+psycopg`, and `sqlalchemy_query`, e.g. `{"sslmode": "require"}`). Use a
database role allowed to delete from Airflow's tables. Its URL reaches `airflow db clean`
through the child's environment only and is never logged. `drop_old_landing` uses the
pipeline's warehouse connection **`learning_platform_db`**.

**Not archived.** `--skip-archive`: otherwise each run copies the purged rows into new
`_airflow_deleted__*` tables that nothing drops. Your database backups are the way back.
The `dag` table is left alone: Airflow already deactivates DAGs whose files are gone, and
deleting a DAG's row would take its serialized versions with it.

**Several workers?** `delete_old_logs` cleans the log folder of the worker it runs on. With
several machines, ship logs to remote storage (`[logging] remote_logging`) and expire them
there, or run a log groomer on each machine (the official Helm chart has one per component).

**Run one date**: trigger with a logical date, or
`airflow dags test airflow_maintenance 2026-11-23 -c '{"dry_run": true}'`. There is nothing to
backfill: a run for today purges everything older than its cutoff, earlier days included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from include.common.dag_defaults import default_args

if TYPE_CHECKING:
    from airflow.sdk import TaskInstance
    from airflow.sdk.types import DagRunProtocol


@dag(
    schedule=CronDataIntervalTimetable("0 3 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(owner="platform"),
    tags=["maintenance", "daily"],
    doc_md=__doc__,
    params={
        "log_retention_days": Param(
            30,
            type="integer",
            minimum=1,
            title="Log retention (days)",
            description="Log files last modified more than this many days before the run's date are deleted.",
        ),
        "metadata_retention_days": Param(
            90,
            type="integer",
            # A run can be busy for days; a shorter retention could purge one still running.
            minimum=7,
            title="Metadata retention (days)",
            description="Metadata rows older than this many days before the run's date are purged.",
        ),
        "landing_retention_days": Param(
            14,
            type="integer",
            minimum=1,
            title="Landing retention (days)",
            description="The learning platform's landing and staging of UTC days more than this many days "
            "before the run's date are dropped, once the day is published.",
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Only report what would be deleted; delete nothing.",
        ),
    },
)
def airflow_maintenance() -> None:
    # TaskFlow passes a task the context values its signature names: the params and the run,
    # which the cutoff is counted back from. multiple_outputs=False: each task's summary is one
    # XCom, not one per key as Airflow would infer from the `-> dict` annotation.
    @task(multiple_outputs=False)
    def delete_old_logs(params: dict[str, Any], dag_run: DagRunProtocol) -> dict:
        from include.maintenance import tasks

        cutoff = tasks.run_cutoff(dag_run, params["log_retention_days"])
        return tasks.delete_old_logs(cutoff, dry_run=params["dry_run"])

    @task(multiple_outputs=False)
    def clean_metadata(params: dict[str, Any], dag_run: DagRunProtocol) -> dict:
        from include.maintenance import tasks

        cutoff = tasks.run_cutoff(dag_run, params["metadata_retention_days"])
        return tasks.clean_metadata(cutoff, dry_run=params["dry_run"])

    @task(multiple_outputs=False)
    def drop_old_landing(params: dict[str, Any], dag_run: DagRunProtocol, ti: TaskInstance) -> dict:
        from include.maintenance import tasks

        cutoff = tasks.run_cutoff(dag_run, params["landing_retention_days"])
        return tasks.drop_old_landing(
            cutoff.date(), dry_run=params["dry_run"], session_name=f"{ti.dag_id}.{ti.task_id}"
        )

    delete_old_logs()
    clean_metadata()
    drop_old_landing()


airflow_maintenance()
