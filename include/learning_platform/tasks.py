"""The bodies of the ``learning_platform_etl`` tasks: plain arguments in, a few counts out.

Each function takes the task's :class:`RunSpec` (the interval it owns and the run's choices,
read from Airflow once by the DAG's task) and whatever else it needs, opens its connections,
calls the stage module that does the work, and returns a few counts for XCom.
No records ever pass through XCom: stages hand over through the warehouse. A failure that
retrying cannot fix (a ``PermanentFailure``) fails its task at once: see ``include.common.failures``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from functools import partial
from typing import TYPE_CHECKING, Any

import psycopg

from include.common.alerts import check_alerts_can_be_sent
from include.common.email import DEFAULT_SMTP_CONN_ID, parse_recipients, send_message
from include.common.failures import ConfigurationError, PermanentFailure, no_retry_on_permanent_failure
from include.common.postgres import connect, conninfo_from_airflow
from include.learning_platform.api import LearningPlatformClient
from include.learning_platform.assets import ATTEMPTS, ATTEMPTS_LOADS
from include.learning_platform.chart import render_history_chart
from include.learning_platform.extract import extract_interval
from include.learning_platform.load import load_interval
from include.learning_platform.local_report import write_local_report
from include.learning_platform.publication import Destination, Publication
from include.learning_platform.quality import VOLUME_CHECK, check_day
from include.learning_platform.report_delivery import RunEmail, send_once
from include.learning_platform.report_email import build_report_email
from include.learning_platform.report_reader import load_history, load_report
from include.learning_platform.run_spec import RunSpec
from include.learning_platform.settings import (
    REPORT_VARIABLE,
    SHEETS_CONN_ID,
    ReportSettings,
    report_settings,
)
from include.learning_platform.stats import compute_daily_stats
from include.learning_platform.texts import Texts, texts_for
from include.learning_platform.validate import validate_interval
from include.learning_platform.warehouse import (
    DB_CONN_ID,
    TEST_DB_CONN_ID,
    claim_warehouse,
    lock_report,
    migrate_schema,
    warehouse_conn_id,
)

if TYPE_CHECKING:
    from airflow.sdk.types import OutletEventAccessorsProtocol

log = logging.getLogger(__name__)


@contextmanager
def warehouse(run: RunSpec) -> Iterator[psycopg.Connection]:
    """The run's warehouse: the days' one, or the scratch one of test mode."""
    from airflow.sdk.exceptions import AirflowNotFoundException

    conn_id = warehouse_conn_id(test_mode=run.test_mode)
    try:
        conninfo = conninfo_from_airflow(conn_id)
    except AirflowNotFoundException:
        if conn_id != TEST_DB_CONN_ID:
            raise
        raise ConfigurationError(
            f"test mode writes to a scratch warehouse of its own, and the Airflow connection "
            f"'{conn_id}' that names it is not defined: define it (a Postgres database other than "
            f"the one of '{DB_CONN_ID}'), or run without test mode"
        ) from None
    conn = connect(conninfo, conn_id=conn_id, application_name=run.session_name)
    with conn:
        yield conn


class QualityGateFailed(PermanentFailure):
    """The day's figures failed a data-quality check; judging the same data again changes nothing."""


@no_retry_on_permanent_failure
def migrate(run: RunSpec) -> dict[str, Any]:
    # The first task: a run whose failures nobody would hear of stops here, before any work.
    alerted = check_alerts_can_be_sent()
    with warehouse(run) as conn:
        applied = migrate_schema(conn)
        claim_warehouse(conn, test_mode=run.test_mode, dag_run_id=run.run_id)
    return {"applied": applied, "alert_recipients": len(alerted)}


@no_retry_on_permanent_failure
def extract(run: RunSpec) -> dict[str, Any]:
    interval = run.interval
    with warehouse(run) as conn, LearningPlatformClient.from_connection() as client:
        result = extract_interval(conn, client, interval, window=run.window, dag_run_id=run.run_id)
    return {"interval": str(interval), "windows": result.windows, "fetched": result.fetched}


@no_retry_on_permanent_failure
def validate(run: RunSpec) -> dict[str, Any]:
    interval = run.interval
    with warehouse(run) as conn:
        result = validate_interval(conn, interval)
    return {"interval": str(interval), **result.as_dict()}


@no_retry_on_permanent_failure
def load(run: RunSpec, outlet_events: OutletEventAccessorsProtocol) -> dict[str, Any]:
    interval = run.interval
    with warehouse(run) as conn:
        result = load_interval(conn, interval, dag_run_id=run.run_id)
    if not run.test_mode:
        # Through the alias, so that a test-mode run, which loads the scratch warehouse, tells
        # the DAGs scheduled on the real table nothing.
        outlet_events[ATTEMPTS_LOADS].add(
            ATTEMPTS, extra={"day": interval.day.isoformat(), "loaded": result.loaded}
        )
    return {"interval": str(interval), **result.as_dict()}


@no_retry_on_permanent_failure
def compute_stats(run: RunSpec) -> dict[str, Any]:
    interval = run.interval
    with warehouse(run) as conn:
        compute_daily_stats(conn, interval, dag_run_id=run.run_id)
        (stats,) = load_history(conn, first_day=interval.day, last_day=interval.day)
    figures = stats.figures
    return {
        "day": interval.day.isoformat(),
        "loaded": stats.loaded,
        "unique_users": figures.unique_users,
        "runs": figures.runs,
        "submits": figures.submits,
        "successful_submits": figures.successful_submits,
    }


@no_retry_on_permanent_failure
def check_quality(run: RunSpec) -> dict[str, Any]:
    interval = run.interval
    settings = report_settings()
    with warehouse(run) as conn:
        checks = check_day(
            conn,
            interval,
            max_rejected_share=settings.max_rejected_share,
            volume=settings.volume,
            quiet_days=settings.quiet_days,
            dag_run_id=run.run_id,
        )
    failed = [
        f"{check.name} (observed {check.observed}; expected {check.expected})"
        + (f": {volume_advice(interval.day)}" if check.name == VOLUME_CHECK else "")
        for check in checks
        if not check.passed
    ]
    if failed:
        # The verdict is stored and the report will say so; failing the task alerts the operators.
        raise QualityGateFailed(
            f"data-quality checks failed for {interval.day}: {'; '.join(failed)}. The report marks the "
            "figures UNRELIABLE. Find the cause (the quarantine holds every rejected record with its "
            "reasons); once the source is fixed, clear this run from `extract`"
        )
    return {"day": interval.day.isoformat(), "passed": [check.name for check in checks]}


def volume_advice(day: date) -> str:
    """What the operator does about a short day: declare it quiet, or get it served in full."""
    return (
        f"if the source really had this little on {day} (a holiday, a shutdown), add "
        f'"{day}" to quiet_days in the Variable {REPORT_VARIABLE} and clear check_quality and the '
        "tasks after it; otherwise ask the API's owners why the day is short, and once it serves "
        "the day in full clear the run from extract"
    )


@no_retry_on_permanent_failure
def publish_report(run: RunSpec) -> dict[str, str]:
    """Publish to Google Sheets, or to local files when no Google credentials are configured."""
    interval = run.interval
    settings = report_settings(test_mode=run.test_mode)
    texts = report_texts(run, settings)
    # Imported here, not at the top: gspread and Google's auth libraries take 0.3 s to import,
    # paid by every task process that imports this module, and only this task uses them.
    from include.common.google_sheets import sheets_client
    from include.learning_platform.sheets_report import SheetsTarget, publish_to_sheets

    client = sheets_client(SHEETS_CONN_ID)
    with warehouse(run) as conn:
        report = load_report(conn, interval.day)
        if client is None:
            with conn.transaction(), conn.cursor() as cursor:
                lock_report(cursor)
                history = load_history(conn, first_day=date.min, last_day=date.max)
                path = write_local_report(settings.report_directory, report, history, texts)
            log.warning(
                "no Google credentials (Airflow connection '%s' is not defined or holds no key): the "
                "report was NOT published to Google Sheets; it was written to %s",
                SHEETS_CONN_ID,
                path,
            )
            return Publication(Destination.LOCAL_FILE, str(path)).as_dict()
        if not settings.spreadsheet:
            raise ConfigurationError(
                f"connection '{SHEETS_CONN_ID}' is defined but Variable {REPORT_VARIABLE} names no "
                "spreadsheet: set its 'spreadsheet' key to the spreadsheet's key or URL"
            )
        try:
            target = SheetsTarget(
                settings.spreadsheet, settings.history_worksheet, settings.summary_worksheet
            )
        except ValueError as error:
            raise ConfigurationError(f"Variable {REPORT_VARIABLE}: {error}") from None
        # Concurrent runs (a backfill) take turns: each reads the sheet's dates, then writes its row.
        with conn.transaction(), conn.cursor() as cursor:
            lock_report(cursor)
            url = publish_to_sheets(client, target, report, texts)
    log.info("report for %s published to Google Sheets: %s", interval.day, url)
    return Publication(Destination.SHEETS, url).as_dict()


@no_retry_on_permanent_failure
def send_email(run: RunSpec, published: dict[str, str] | None) -> dict[str, Any]:
    """Mail the day's report, once per run (see report_delivery); says so plainly when publishing failed.

    ``published`` is what ``publish_report`` returned, None when it failed.
    """
    interval = run.interval
    settings = report_settings(test_mode=run.test_mode)
    texts = report_texts(run, settings)
    try:
        recipients = parse_recipients(settings.recipients)
    except ValueError as error:
        raise ConfigurationError(f"Variable {REPORT_VARIABLE}: recipients: {error}") from None
    publication = Publication.from_dict(published) if published else None
    with warehouse(run) as conn:
        report = load_report(conn, interval.day)
    chart = render_history_chart(report.history, texts, last_day=interval.day)
    # No sender: send_message takes the connection's from_email.
    message = build_report_email(
        report, texts, publication=publication, sender="", recipients=recipients, chart_png=chart
    )
    run_email = RunEmail(interval.day, run.run_id, run.clear_number)
    send = partial(send_message, conn_id=DEFAULT_SMTP_CONN_ID)
    with warehouse(run) as conn:
        delivery = send_once(conn, message, run_email, send=send)
    if delivery.sent_now:
        log.info(
            "report email for %s sent to %d recipients: %s", interval.day, len(recipients), message["Subject"]
        )
    return {
        "day": interval.day.isoformat(),
        "recipients": len(recipients),
        "report_updated": publication is not None,
        "message_id": delivery.message_id,
    }


def report_texts(run: RunSpec, settings: ReportSettings) -> Texts:
    """The run's language: the trigger form's choice, else the operator's setting."""
    return texts_for(run.language or settings.language)
