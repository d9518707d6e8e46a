"""
### Learning platform: daily grader attempts → warehouse → report

Brings one UTC day of students' grader attempts from the learning platform's statistics API
into the warehouse, checked record by record, computes the day's figures, checks them, and
publishes the report to Google Sheets and by email.

| task | what it does | writes |
|---|---|---|
| `migrate_schema` | checks that failure alerts can reach someone, then creates or upgrades the pipeline's tables | `learning_platform.*` |
| `extract` | fetches the day hour by hour (retrying API hiccups) and lands every record verbatim | `raw_attempts`, `landing_batches` |
| `validate` | judges every record: valid, valid with flagged defects, or rejected with all its reasons | `staged_attempts`, `staged_rejections`, `staging_batches` |
| `load` | publishes validate's verdict on the current landing in one transaction: attempts, quarantine and the batch ledger | `attempts`, `quarantined_attempts`, `load_batches` |
| `compute_stats` | the day's figures, per course, and quarantine counts by reason | `daily_stats`, `daily_course_stats`, `daily_quarantine_reasons` |
| `check_quality` | data-quality gate: attempts present, rejected share under the threshold, no attempt stored twice, figures match the warehouse, the day's volume not far under the previous days' (unless declared quiet) | `daily_quality_checks` |
| `publish_report` | upserts the date's row in the sheet's history and rewrites the summary worksheet; without Google credentials, writes local CSV and HTML files instead | Google Sheets or files |
| `send_email` | the report by email (HTML and text, 30-day chart) | mail |
| `mark_run_failed` | runs only when another task failed, and fails, so that the run shows failed | nothing |

**Which day.** A run processes one UTC day, and its **logical date is that day**: the run
id, the logical date and the data interval shown for a run all name it. The schedule runs at
00:00 UTC and processes the day that just ended (the run at 00:00 on the 2nd processes the
1st, `scheduled__…-01`). To process another day, open *Trigger*, set **Logical Date** to any
time on that day (UTC); left at its default, "now", a run processes yesterday, the last
complete day, never an incomplete today. Manual run ids read `manual__<day>__at_<trigger time>`.
Backfill run ids are Airflow's (`backfill__<end of the day>`), but their logical date and data
interval are the day. **Test mode** processes only the first hour of the day, in a scratch warehouse
of its own (connection `learning_platform_test_db`): it never changes a real day's rows, figures,
sheet or files, and its report and mail are marked test mode. Every run's **note** says which
day it processed and whether it was test mode. **Report language**
chooses English or Russian for the report and the email.

**Reruns and backfills are safe.** Every task replaces its day; it never appends, and the
sheet keeps one row per date. Rerun a day by clearing its run, or by triggering it again (any
other time of that day: a logical date belongs to one run); backfill the days A to B with
*Trigger → Backfill* or `airflow backfill create --dag-id learning_platform_etl --from-date A
--to-date B`.

**When something fails.** The run ends *failed* whenever any task failed, even when the
report still went out (`mark_run_failed` sees to it, without an alert of its own). Each failed
task sends one alert email, to the Variable `alert_recipients` (else the deployment's
`[pipelines] alert_recipients`; with neither, `migrate_schema` refuses to start the run).
Faults that heal (an API or database hiccup, a rate limit) are retried; a failure that retrying
cannot fix (nothing landed, a refused credential, a spreadsheet not shared, an invalid setting)
fails its task at once, its message saying what to do, usually which task to clear the run
from. If a quality check fails, `check_quality` fails and the report still goes out, saying
which check failed and marking the figures unreliable. Publishing retries only briefly within
its one try, then the email goes out saying the report was NOT updated. Nothing is mailed for
a day that was not loaded. A window the API answers with malformed JSON on every attempt fails
`extract`, naming the window and where its raw answer was kept.

**Rejected records** are never dropped: they sit in `learning_platform.quarantined_attempts`
with the raw record and every reason (for example `user_id_wrong_length`,
`is_correct_missing_on_submit`, `created_at_outside_window`). Rows loaded with damaged LMS
passback details carry their flags in `attempts.defects`.

**Connections.** `learning_platform_api` (HTTP: host = base URL, login = client,
password = client_key; extras `read_timeout`, `connect_timeout`, `retry_attempts`),
`learning_platform_db` (Postgres: the warehouse, not Airflow's metadata database),
`learning_platform_sheets` (Google Cloud: the service account's `keyfile_dict` or `key_path`;
leave it undefined to write the report to files) and `smtp_default` (SMTP, extra `from_email`).
**Variables.** `learning_platform_report` (JSON: `recipients`, `spreadsheet`,
`history_worksheet`, `summary_worksheet`, `language`, `max_rejected_share`, `local_dir`,
`min_daily_records`, `min_volume_ratio`, `volume_history_days`, `quiet_days`) and
`alert_recipients` (comma-separated; the deployment's default: `[pipelines] alert_recipients`).

Downstream DAGs can be scheduled on the asset `learning_platform.attempts`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pendulum
from airflow.sdk import Param, TriggerRule, chain, dag, task

from include.common.dag_defaults import default_args
from include.common.run_state import mark_run_failed
from include.common.timetables import UtcDayTimetable
from include.learning_platform.assets import ATTEMPTS, ATTEMPTS_LOADS
from include.learning_platform.run_spec import RunSpec

if TYPE_CHECKING:
    from airflow.sdk import TaskInstance
    from airflow.sdk.types import DagRunProtocol, OutletEventAccessorsProtocol


@dag(
    # 00:00 UTC each day, for the day that just ended; a run's logical date is the day it
    # processes, also for manual runs (see "Which day" above and include/common/timetables.py).
    schedule=UtcDayTimetable(),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=3,
    default_args=default_args(owner="learning-platform-data"),
    tags=["learning_platform", "etl", "daily"],
    description="One UTC day of grader attempts: API → checked → warehouse → daily figures → report and email.",
    doc_md=__doc__,
    params={
        # Optional in the form (null allowed, so not marked required); empty means the default.
        "test_mode": Param(
            False,
            type=["null", "boolean"],
            title="Test mode",
            description=(
                "Process only the first hour of the day, in the scratch warehouse of connection "
                "learning_platform_test_db: a real day is never changed. The run's note says TEST MODE."
            ),
        ),
        "window_minutes": Param(
            60,
            type=["null", "integer"],
            minimum=1,
            maximum=1440,
            title="Fetch window (minutes)",
            description="The API has no paging: the day is fetched in windows of this size. Empty: 60.",
        ),
        "language": Param(
            None,
            type=["null", "string"],
            enum=[None, "en", "ru"],
            values_display={
                "null": "As configured (Variable learning_platform_report; English if unset)",
                "en": "English",
                "ru": "Russian",
            },
            title="Report language",
            description="Language of the report and the email.",
        ),
    },
)
def learning_platform_etl() -> None:
    # TaskFlow passes a task the context values its signature names (params, dag_run, ti,
    # outlet_events); RunSpec reads them into the day the task owns. Task bodies import the
    # pipeline's modules when they run, keeping DAG parsing light (run_spec imports nothing heavy).
    # multiple_outputs=False: a task's few counts are one XCom; a `-> dict` annotation would
    # otherwise make Airflow push each key as an XCom of its own.
    @task(multiple_outputs=False)
    def migrate_schema(params: dict[str, Any], dag_run: DagRunProtocol, ti: TaskInstance) -> dict:
        from include.learning_platform import tasks

        return tasks.migrate(RunSpec.from_airflow(params, dag_run, task_id=ti.task_id))

    @task(multiple_outputs=False)
    def extract(params: dict[str, Any], dag_run: DagRunProtocol, ti: TaskInstance) -> dict:
        from include.learning_platform import tasks

        return tasks.extract(RunSpec.from_airflow(params, dag_run, task_id=ti.task_id))

    @task(multiple_outputs=False)
    def validate(params: dict[str, Any], dag_run: DagRunProtocol, ti: TaskInstance) -> dict:
        from include.learning_platform import tasks

        return tasks.validate(RunSpec.from_airflow(params, dag_run, task_id=ti.task_id))

    @task(multiple_outputs=False, outlets=[ATTEMPTS_LOADS])
    def load(
        params: dict[str, Any],
        dag_run: DagRunProtocol,
        ti: TaskInstance,
        outlet_events: OutletEventAccessorsProtocol,
    ) -> dict:
        from include.learning_platform import tasks

        run = RunSpec.from_airflow(params, dag_run, task_id=ti.task_id)
        return tasks.load(run, outlet_events)

    # It reads the attempts load wrote. Declared, the asset is also registered when the DAG is
    # parsed: otherwise the first events through the alias create it, and two runs' loads doing
    # that at once fail one of them on Airflow's unique index (seen under Celery).
    @task(multiple_outputs=False, inlets=[ATTEMPTS])
    def compute_stats(params: dict[str, Any], dag_run: DagRunProtocol, ti: TaskInstance) -> dict:
        from include.learning_platform import tasks

        return tasks.compute_stats(RunSpec.from_airflow(params, dag_run, task_id=ti.task_id))

    @task(multiple_outputs=False)
    def check_quality(params: dict[str, Any], dag_run: DagRunProtocol, ti: TaskInstance) -> dict:
        from include.learning_platform import tasks

        return tasks.check_quality(RunSpec.from_airflow(params, dag_run, task_id=ti.task_id))

    # Runs when the quality gate failed too: the report then says which check failed. No task
    # retries: what heals in minutes (rate limits, 5xx) is retried within the try, and the email
    # must not wait a quarter of an hour of retries to say the report was not updated.
    @task(multiple_outputs=False, trigger_rule=TriggerRule.ALL_DONE_MIN_ONE_SUCCESS, retries=0)
    def publish_report(params: dict[str, Any], dag_run: DagRunProtocol, ti: TaskInstance) -> dict:
        from include.learning_platform import tasks

        return tasks.publish_report(RunSpec.from_airflow(params, dag_run, task_id=ti.task_id))

    # Runs when publishing failed too (and says the report was NOT updated), but only if the
    # day's figures exist: compute_stats is among its upstreams and must have succeeded.
    # ``published`` is publish_report's return value; after a failed publish it has none, and
    # Airflow resolves the argument to None (a missing return_value XCom is None, not an error).
    @task(multiple_outputs=False, trigger_rule=TriggerRule.ALL_DONE_MIN_ONE_SUCCESS)
    def send_email(
        published: dict | None, params: dict[str, Any], dag_run: DagRunProtocol, ti: TaskInstance
    ) -> dict:
        from include.learning_platform import tasks

        return tasks.send_email(RunSpec.from_airflow(params, dag_run, task_id=ti.task_id), published)

    stats = compute_stats()
    quality = check_quality()
    report = publish_report()
    email = send_email(report)
    pipeline = [migrate_schema(), extract(), validate(), load(), stats, quality, report, email]
    chain(*pipeline)
    stats >> [report, email]
    quality >> email
    # The run's state comes from its leaves, and send_email succeeds after a failed gate: Airflow's
    # "watcher" (include.common.run_state) fails the run whenever a task failed.
    pipeline >> mark_run_failed()


learning_platform_etl()
