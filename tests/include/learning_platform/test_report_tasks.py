"""The report half's task bodies as Airflow calls them: configuration from connections and the
Variable (environment variables, as a deployment's secrets backend would give them), a real
PostgreSQL, the simulator, a real SMTP server and the real gspread path against the Sheets fake.
"""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import psycopg
import pytest
from airflow.sdk.exceptions import AirflowFailException

from devservices.postgres import free_port
from devservices.smtp_sink import SmtpSink
from include.common.email import EmailNotSent
from include.learning_platform import tasks
from include.learning_platform.report import load_report
from include.learning_platform.sheets_report import serial_day
from tests.fakes.google_sheets import CLIENT_EMAIL, FakeGoogleSheets, service_account_info
from tests.include.learning_platform.stages import DAY, run_stages

SPREADSHEET = "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdEFG"
RECIPIENTS = ["analysts@uni.test", "head@uni.test"]


@dataclass
class TaskInstance:
    """The part of Airflow's task instance the task bodies use."""

    task_id: str
    xcoms: dict[str, Any] = field(default_factory=dict)
    dag_id: str = "learning_platform_etl"

    def xcom_pull(self, task_ids: str) -> Any:
        return self.xcoms.get(task_ids)


def context(task_id: str, *, xcoms: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
    return {
        "params": {"test_mode": False, "window_minutes": 60, "language": None} | params,
        "run_id": "manual__report_tasks",
        "ti": TaskInstance(task_id, xcoms or {}),
        "data_interval_start": DAY.start,
        "data_interval_end": DAY.end,
    }


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[SmtpSink]:
    with SmtpSink(tmp_path / "outbox") as sink:
        yield sink


@pytest.fixture
def configured(airflow_home, warehouse, warehouse_conninfo, outbox, monkeypatch, tmp_path) -> Path:
    """Connections and the report Variable for a loaded day; returns the report folder."""
    db = psycopg.conninfo.conninfo_to_dict(warehouse_conninfo)
    fields = {"host": db["host"], "port": int(db["port"]), "schema": db["dbname"], "login": db["user"]}
    monkeypatch.setenv(
        "AIRFLOW_CONN_LEARNING_PLATFORM_DB",
        json.dumps({"conn_type": "postgres", **fields, "password": db.get("password")}),
    )
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
    tasks.compute_stats(context("compute_stats"))


def test_the_report_is_published_to_sheets_and_mailed_with_its_link(
    loaded_day, google, warehouse, outbox, monkeypatch
) -> None:
    connect_google(google, monkeypatch)
    tasks.check_quality(context("check_quality"))

    published = tasks.publish_report(context("publish_report"))
    again = tasks.publish_report(context("publish_report"))
    sent = tasks.send_email(context("send_email", xcoms={"publish_report": published}))

    assert published == again
    assert published["destination"] == "sheets"
    assert published["location"].startswith(f"https://docs.google.com/spreadsheets/d/{SPREADSHEET}")
    history = google.values(SPREADSHEET, "History")
    assert [row[0] for row in history[1:] if row] == [serial_day(DAY.day)], "one row per date"
    assert sent == {"day": DAY.day.isoformat(), "recipients": 2, "report_updated": True}
    [message] = mail(outbox)
    assert message["To"] == ", ".join(RECIPIENTS)
    assert message["From"] == "airflow@uni.test"
    assert published["location"] in message.get_body(("plain",)).get_content()


def test_without_google_credentials_the_report_goes_to_files_and_the_email_says_so(
    loaded_day, configured, outbox
) -> None:
    tasks.check_quality(context("check_quality"))

    published = tasks.publish_report(context("publish_report", language="ru"))
    tasks.send_email(context("send_email", xcoms={"publish_report": published}, language="ru"))

    assert published == {
        "destination": "local_file",
        "location": str(configured / f"learning_platform_{DAY.day.isoformat()}.html"),
    }
    assert "Уникальные пользователи" in Path(published["location"]).read_text()
    [message] = mail(outbox)
    assert "НЕ опубликован в Google Таблицах" in message.get_body(("plain",)).get_content()


def test_a_failed_check_fails_the_gate_and_the_report_says_so(
    loaded_day, configured, outbox, monkeypatch
) -> None:
    set_report_variable(monkeypatch, local_dir=str(configured), max_rejected_share=0.001)

    with pytest.raises(AirflowFailException, match="rejected_share"):
        tasks.check_quality(context("check_quality"))
    published = tasks.publish_report(context("publish_report"))
    tasks.send_email(context("send_email", xcoms={"publish_report": published}))

    assert "UNRELIABLE" in Path(published["location"]).read_text()
    [message] = mail(outbox)
    assert message["Subject"].endswith("UNRELIABLE figures")
    assert "Share of rejected records under the threshold" in message.get_body(("plain",)).get_content()


def test_when_publishing_failed_the_email_says_the_report_was_not_updated(loaded_day, outbox) -> None:
    tasks.send_email(context("send_email", xcoms={}))

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
        tasks.send_email(context("send_email", xcoms={}))

    assert stats_rows(warehouse) == before
    assert load_report(warehouse, DAY.day).stats.loaded > 0


def test_missing_recipients_fail_for_good_naming_the_variable(loaded_day, monkeypatch) -> None:
    set_report_variable(monkeypatch, recipients=[])

    with pytest.raises(AirflowFailException, match="learning_platform_report"):
        tasks.send_email(context("send_email", xcoms={}))
