"""
### Learning platform: daily grader attempts → warehouse

Brings one UTC day of students' grader attempts from the learning platform's statistics API
into the warehouse, checked record by record.

| task | what it does | writes |
|---|---|---|
| `migrate_schema` | creates or upgrades the pipeline's tables | `learning_platform.*` |
| `extract` | fetches the day hour by hour (retrying API hiccups) and lands every record verbatim | `raw_attempts` |
| `validate` | judges every record: valid, valid with flagged defects, or rejected with all its reasons | `staged_attempts`, `staged_rejections` |
| `load` | publishes the day in one transaction: attempts, quarantine and the batch ledger | `attempts`, `quarantined_attempts`, `load_batches` |

**Which day.** A scheduled run processes the data interval that just ended (the run at
00:00 UTC on the 2nd processes the 1st). In the trigger form, set **date** to process any
day; leave it empty to use the run's data interval. **test_mode** processes only the first
hour of the day, as the original script's test mode did.

**Reruns and backfills are safe.** Every task replaces its day; it never appends. Rerun a
day by triggering it again (or clearing its tasks); backfill a range with *Trigger → Backfill*
or `airflow backfill create --dag-id learning_platform_etl --from-date A --to-date B`.

**Rejected records** are never dropped: they sit in `learning_platform.quarantined_attempts`
with the raw record and every reason (for example `user_id_wrong_length`,
`is_correct_missing_on_submit`, `created_at_outside_window`). Rows loaded with damaged LMS
passback details carry their flags in `attempts.defects`.

**Connections.** `learning_platform_api` (HTTP: host = base URL, login = client,
password = client_key; extras `read_timeout`, `connect_timeout`, `retry_attempts`) and
`learning_platform_db` (Postgres: the warehouse, not Airflow's metadata database).

Downstream DAGs can be scheduled on the asset `learning_platform.attempts`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task

from include.common.dag_defaults import default_args
from include.learning_platform.assets import ATTEMPTS


@dag(
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=3,
    default_args=default_args(owner="learning-platform-data"),
    tags=["learning_platform", "etl", "daily"],
    doc_md=__doc__,
    params={
        "date": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Date (UTC)",
            description="Day to process, YYYY-MM-DD. Empty: the run's data interval.",
        ),
        "test_mode": Param(
            False,
            type="boolean",
            title="Test mode",
            description="Process only the first hour of the day.",
        ),
        "window_minutes": Param(
            60,
            type="integer",
            minimum=1,
            maximum=1440,
            title="Fetch window (minutes)",
            description="The API has no paging: the day is fetched in windows of this size.",
        ),
    },
)
def learning_platform_etl() -> None:
    # Task bodies import the pipeline's modules when they run, keeping DAG parsing light.
    @task
    def migrate_schema() -> dict:
        from include.learning_platform import tasks

        return tasks.migrate(get_current_context())

    @task
    def extract() -> dict:
        from include.learning_platform import tasks

        return tasks.extract(get_current_context())

    @task
    def validate() -> dict:
        from include.learning_platform import tasks

        return tasks.validate(get_current_context())

    @task(outlets=[ATTEMPTS])
    def load() -> dict:
        from include.learning_platform import tasks

        return tasks.load(get_current_context())

    migrate_schema() >> extract() >> validate() >> load()


learning_platform_etl()
