"""The report half's task bodies as Airflow calls them: configuration from connections and the
Variable (environment variables, as a deployment's secrets backend would give them), a real
PostgreSQL, the simulator, a real SMTP server and the real gspread path against the Sheets fake.
"""

from __future__ import annotations

import csv
import email
import email.policy
import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import psycopg
import pytest
from airflow.sdk.exceptions import AirflowFailException

from devservices.environment import postgres_connection_json
from devservices.postgres import free_port
from devservices.smtp_sink import SERVER_NAME, AnyPortController, SmtpSink
from include.common.email import EmailNotSent
from include.common.intervals import Interval
from include.learning_platform import tasks
from include.learning_platform.local_report import HISTORY_FILE
from include.learning_platform.report_reader import load_report
from include.learning_platform.run_spec import RunSpec
from include.learning_platform.sheets_report import serial_day
from include.learning_platform.warehouse import lock_report
from tests.fakes.google_sheets import CLIENT_EMAIL, FakeGoogleSheets, service_account_info
from tests.include.learning_platform.stages import DAY, run_stages
from tests.include.learning_platform.test_report_delivery import HangingUpHandler

SPREADSHEET = "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdEFG"
RECIPIENTS = ["analysts@uni.test", "head@uni.test"]
NEXT_DAY = Interval.for_day(DAY.day + timedelta(days=1))


def run_of(day: Interval = DAY, *, run_id: str = "manual__report_tasks", **choices: Any) -> RunSpec:
    """What a task of a run of ``day`` is given: that day (its data interval) and the run's choices."""
    return RunSpec(day, run_id=run_id, **choices)


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[SmtpSink]:
    with SmtpSink(tmp_path / "outbox") as sink:
        yield sink


@pytest.fixture
def configured(airflow_home, warehouse, warehouse_conninfo, outbox, monkeypatch, tmp_path) -> Path:
    """Connections and the report Variable for a loaded day; returns the report folder."""
    monkeypatch.setenv("AIRFLOW_CONN_LEARNING_PLATFORM_DB", postgres_connection_json(warehouse_conninfo))
    smtp_extra = {"disable_ssl": True, "disable_tls": True, "from_email": "airflow@uni.test", "timeout": 5}
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": outbox.port, "extra": smtp_extra}),
    )
    set_report_variable(monkeypatch, local_dir=str(tmp_path / "reports"))
    return tmp_path / "reports"


def set_report_variable(monkeypatch: pytest.MonkeyPatch, **values: Any) -> None:
    variable = {"recipients": RECIPIENTS, "spreadsheet": SPREADSHEET, **values}
    monkeypatch.setenv("AIRFLOW_VAR_LEARNING_PLATFORM_REPORT", json.dumps(variable))


def connect_google(google: FakeGoogleSheets, monkeypatch: pytest.MonkeyPatch) -> None:
    google.add_spreadsheet(SPREADSHEET, shared_with={CLIENT_EMAIL})
    extra = {"keyfile_dict": json.dumps(service_account_info())}
    monkeypatch.setenv(
        "AIRFLOW_CONN_LEARNING_PLATFORM_SHEETS",
        json.dumps({"conn_type": "google_cloud_platform", "extra": extra}),
    )


def mail(sink: SmtpSink) -> list[EmailMessage]:
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in sink.messages()]


def stats_rows(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("SELECT * FROM learning_platform.daily_stats ORDER BY stats_date").fetchall()


@pytest.fixture
def loaded_day(configured, warehouse, simulator, api_client) -> None:
    run_stages(warehouse, api_client)
    tasks.compute_stats(run_of())


def test_the_report_is_published_to_sheets_and_mailed_with_its_link(
    loaded_day, google, warehouse, outbox, monkeypatch
) -> None:
    connect_google(google, monkeypatch)
    tasks.check_quality(run_of())

    published = tasks.publish_report(run_of())
    again = tasks.publish_report(run_of())
    sent = tasks.send_email(run_of(), published)

    assert published == again
    assert published["destination"] == "sheets"
    assert published["location"].startswith(f"https://docs.google.com/spreadsheets/d/{SPREADSHEET}")
    history = google.values(SPREADSHEET, "History")
    assert [row[0] for row in history[1:] if row] == [serial_day(DAY.day)], "one row per date"
    [message] = mail(outbox)
    assert sent == {
        "day": DAY.day.isoformat(),
        "recipients": 2,
        "report_updated": True,
        "message_id": message["Message-ID"],
    }
    assert message["To"] == ", ".join(RECIPIENTS)
    assert message["From"] == "airflow@uni.test"
    assert published["location"] in message.get_body(("plain",)).get_content()


def test_without_google_credentials_the_report_goes_to_files_and_the_email_says_so(
    loaded_day, configured, outbox
) -> None:
    tasks.check_quality(run_of())

    published = tasks.publish_report(run_of(language="ru"))
    tasks.send_email(run_of(language="ru"), published)

    assert published == {
        "destination": "local_file",
        "location": str(configured / f"learning_platform_{DAY.day.isoformat()}.html"),
    }
    assert "Уникальные пользователи" in Path(published["location"]).read_text()
    [message] = mail(outbox)
    assert "НЕ опубликован в Google Таблицах" in message.get_body(("plain",)).get_content()


def local_history_dates(directory: Path) -> list[str]:
    with (directory / HISTORY_FILE).open(newline="") as file:
        return [row[0] for row in list(csv.reader(file))[1:]]


def compute_next_day(warehouse: psycopg.Connection, api_client) -> None:
    run_stages(warehouse, api_client, NEXT_DAY)
    tasks.compute_stats(run_of(NEXT_DAY))


def test_an_older_date_published_after_a_newer_one_leaves_every_date_in_the_local_files(
    loaded_day, configured, warehouse, api_client
) -> None:
    compute_next_day(warehouse, api_client)
    tasks.publish_report(run_of(NEXT_DAY))
    newer_page = (configured / f"learning_platform_{NEXT_DAY.day.isoformat()}.html").read_text()

    tasks.publish_report(run_of())

    assert local_history_dates(configured) == [DAY.day.isoformat(), NEXT_DAY.day.isoformat()]
    assert (configured / f"learning_platform_{NEXT_DAY.day.isoformat()}.html").read_text() == newer_page


def test_a_local_publish_takes_its_turn_and_reads_the_history_after_the_one_before(
    loaded_day, configured, warehouse, warehouse_conninfo, api_client
) -> None:
    """Another publisher holds the lock while a newer date lands: the waiting publish must read
    the history once its turn comes, not before, or its file would miss that date."""
    with psycopg.connect(warehouse_conninfo) as other, other.cursor() as cursor:
        lock_report(cursor)
        with ThreadPoolExecutor(1) as pool:
            publishing = pool.submit(tasks.publish_report, run_of())
            wait_for_a_lock_waiter(warehouse_conninfo)
            compute_next_day(warehouse, api_client)
            other.commit()
            publishing.result(timeout=60)

    assert local_history_dates(configured) == [DAY.day.isoformat(), NEXT_DAY.day.isoformat()]


def wait_for_a_lock_waiter(conninfo: str, timeout_s: float = 60) -> None:
    """Return once a session waits for an advisory lock (a condition, not a guess at timing)."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(conninfo, autocommit=True) as conn:
        while time.monotonic() < deadline:
            query = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            if conn.execute(query).fetchone()[0]:
                return
            time.sleep(0.05)
    raise TimeoutError("publish_report never waited for the report lock")


def test_a_failed_check_fails_the_gate_and_the_report_says_so(
    loaded_day, configured, outbox, monkeypatch
) -> None:
    set_report_variable(monkeypatch, local_dir=str(configured), max_rejected_share=0.001)

    with pytest.raises(AirflowFailException, match="rejected_share"):
        tasks.check_quality(run_of())
    published = tasks.publish_report(run_of())
    tasks.send_email(run_of(), published)

    assert "UNRELIABLE" in Path(published["location"]).read_text()
    [message] = mail(outbox)
    assert message["Subject"].endswith("UNRELIABLE figures")
    assert "Share of rejected records under the threshold" in message.get_body(("plain",)).get_content()


def test_a_day_the_api_answered_empty_fails_the_gate_with_what_to_do(
    configured, warehouse, simulator, api_client, outbox, monkeypatch
) -> None:
    days = [Interval.for_day(DAY.day + timedelta(days=n)) for n in range(4)]
    empty = days[-1].day.isoformat()
    simulator.configure(records_per_day=300, empty_dates=[empty])
    for day in days:
        run_stages(warehouse, api_client, day, dag_run_id=f"run_{day.day}")
        tasks.compute_stats(run_of(day))
    for day in days[:-1]:
        tasks.check_quality(run_of(day))

    with pytest.raises(AirflowFailException) as failure:
        tasks.check_quality(run_of(days[-1]))
    published = tasks.publish_report(run_of(days[-1]))
    tasks.send_email(run_of(days[-1]), published)

    message = str(failure.value)
    assert (
        f"data-quality checks failed for {empty}: volume_normal (observed 0 judged; expected at least "
        in message
    )
    assert f'add "{empty}" to quiet_days in the Variable learning_platform_report' in message
    assert "clear the run from extract" in message
    [mailed] = mail(outbox)
    assert mailed["Subject"].endswith("UNRELIABLE figures")
    assert "Number of records in line with the previous days" in mailed.get_body(("plain",)).get_content()


def test_a_day_declared_quiet_in_the_variable_passes_the_gate(
    configured, warehouse, simulator, api_client, monkeypatch
) -> None:
    days = [Interval.for_day(DAY.day + timedelta(days=n)) for n in range(4)]
    holiday = days[-1].day.isoformat()
    simulator.configure(records_per_day=300, empty_dates=[holiday])
    set_report_variable(monkeypatch, local_dir=str(configured), quiet_days=[holiday])
    for day in days:
        run_stages(warehouse, api_client, day, dag_run_id=f"run_{day.day}")
        tasks.compute_stats(run_of(day))

    passed = tasks.check_quality(run_of(days[-1]))

    assert "volume_normal" in passed["passed"]
    assert load_report(warehouse, days[-1].day).reliable


def test_when_publishing_failed_the_email_says_the_report_was_not_updated(loaded_day, outbox) -> None:
    tasks.send_email(run_of(), None)

    [message] = mail(outbox)
    assert message["Subject"].endswith("report NOT updated")
    assert "The report was NOT updated" in message.get_body(("plain",)).get_content()


def test_mail_server_down_fails_the_task_for_a_retry_and_leaves_the_data(
    loaded_day, warehouse, monkeypatch
) -> None:
    before = stats_rows(warehouse)
    down = {"disable_ssl": True, "disable_tls": True, "from_email": "airflow@uni.test", "timeout": 5}
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": free_port(), "extra": down}),
    )

    with pytest.raises(EmailNotSent):
        tasks.send_email(run_of(), None)

    assert stats_rows(warehouse) == before
    assert load_report(warehouse, DAY.day).stats.loaded > 0


def test_a_retry_of_a_run_that_mailed_the_report_sends_nothing(loaded_day, outbox) -> None:
    first = tasks.send_email(run_of(), None)
    retry = tasks.send_email(run_of(), None)

    [message] = mail(outbox)
    assert first == retry
    assert retry["message_id"] == message["Message-ID"]


def test_a_cleared_run_and_a_new_run_of_the_date_mail_the_report_again(loaded_day, outbox) -> None:
    run_id = "scheduled__2026-11-22T00:00:00+00:00"
    tasks.send_email(run_of(run_id=run_id), None)

    tasks.send_email(run_of(run_id=run_id, clear_number=1), None)
    tasks.send_email(run_of(run_id="manual__2026-12-06T04:00:00+00:00"), None)

    assert len(mail(outbox)) == 3


def test_a_report_email_that_may_have_arrived_fails_for_good_saying_what_to_do(
    loaded_day, monkeypatch, tmp_path
) -> None:
    hanging_up = AnyPortController(
        HangingUpHandler(tmp_path / "outbox"), hostname="127.0.0.1", port=0, server_hostname=SERVER_NAME
    )
    hanging_up.start()
    try:
        smtp = json.loads(os.environ["AIRFLOW_CONN_SMTP_DEFAULT"]) | {"port": hanging_up.port}
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(smtp))
        with pytest.raises(AirflowFailException, match=r"Message-ID .* clear this task") as caught:
            tasks.send_email(run_of(), None)
    finally:
        hanging_up.stop()

    [message] = mail(SmtpSink(tmp_path / "outbox"))
    assert message["Message-ID"] in str(caught.value)


def test_missing_recipients_fail_for_good_naming_the_variable(loaded_day, monkeypatch) -> None:
    set_report_variable(monkeypatch, recipients=[])

    with pytest.raises(AirflowFailException, match="learning_platform_report"):
        tasks.send_email(run_of(), None)
