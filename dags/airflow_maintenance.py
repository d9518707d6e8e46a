"""
### Airflow maintenance: log and metadata retention

Keeps Airflow's own disk and database from growing without end. Every day at 03:00 UTC
(after the nightly pipelines) two independent tasks delete what is older than the retention
periods; a failure of one does not stop the other.

| task | what it deletes | how |
|---|---|---|
| `delete_old_logs` | log files under `[logging] base_log_folder` last modified before the cutoff (task logs, and the dag processor's and scheduler's when they live there), then directories left empty | walks the folder; never follows or deletes symlinks, never removes the folder itself, leaves fresh empty directories to the tasks that just made them |
| `clean_metadata` | rows of the metadata database older than the cutoff: dag runs, task instances and their history, XComs, audit log, jobs, import errors, asset events, triggers… | `airflow db clean --skip-archive --error-on-cleanup-failure` on every table it knows except `dag` |

**Cutoffs** are counted back from the run's data interval end (its logical date), never
from the clock, so a retry or rerun deletes exactly what the first try did. Each task
returns a small summary (counts, bytes, rows per table) and logs a few example paths.

**Why these defaults.** `log_retention_days` = **30**: a month covers the usual look back
(an incident review, a backfill of last week, a monthly report gone wrong); the original
script kept 3 days, which loses the evidence over a long weekend. `metadata_retention_days`
= **90**: the grid, task durations and rerun history of a quarter; it is longer than log
retention because a task instance whose log is gone still says when it ran and how it
ended, while a log file whose task instance is gone can no longer be reached from the UI.
`airflow db clean` always keeps the latest scheduled run of every DAG (the scheduler needs
it to continue); manual runs have no such protection.

**Dry run** (`dry_run`): both tasks only report — the files that would be deleted (count,
bytes, examples) and `db clean --dry-run`'s row counts per table.

**Connection.** Airflow 3 forbids tasks to reach the metadata database (the worker replaces
`sql_alchemy_conn` in a task's environment with `airflow-db-not-allowed:///`), so the
database is granted explicitly through the connection **`airflow_metadata_db`** (type
`postgres`, `mysql`, or `sqlite` with the file path as host; extras `sqlalchemy_scheme`,
e.g. `postgresql+psycopg`, and `sqlalchemy_query`, e.g. `{"sslmode": "require"}`). Use a
database role allowed to delete from Airflow's tables. Its URL reaches `airflow db clean`
through the child's environment only and is never logged.

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

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task

from include.common.dag_defaults import default_args


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
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Only report what would be deleted; delete nothing.",
        ),
    },
)
def airflow_maintenance() -> None:
    @task
    def delete_old_logs() -> dict:
        from include.maintenance import tasks

        return tasks.delete_old_logs(get_current_context())

    @task
    def clean_metadata() -> dict:
        from include.maintenance import tasks

        return tasks.clean_metadata(get_current_context())

    delete_old_logs()
    clean_metadata()


airflow_maintenance()
