"""Failures that retrying cannot fix fail their task at once, saying what to do; the rest retry.

The task bodies run as Airflow calls them, against a real PostgreSQL, with configuration from
``AIRFLOW_CONN_*`` / ``AIRFLOW_VAR_*`` variables. ``AirflowFailException`` is how a task body
tells Airflow "no retries".
"""

from __future__ import annotations

import json

import pytest
from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk.execution_time.context import OutletEventAccessors

from devservices.environment import postgres_connection_json
from include.common.http import TransientSourceError
from include.learning_platform import tasks
from include.learning_platform.extract import extract_interval
from include.learning_platform.load import StagingIncomplete
from tests.conftest import CLIENT, CLIENT_KEY
from tests.fakes.google_sheets import FakeGoogleSheets
from tests.include.learning_platform.stages import DAY, HOUR, run_stages
from tests.include.learning_platform.test_report_tasks import SPREADSHEET, connect_google, run_of
from tests.reliability.harness import call_body

SMTP_EXTRA = {"disable_ssl": True, "disable_tls": True, "from_email": "airflow@uni.test"}


@pytest.fixture
def configured(airflow_home, warehouse, warehouse_conninfo, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_LEARNING_PLATFORM_DB", postgres_connection_json(warehouse_conninfo))
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "extra": SMTP_EXTRA}),
    )
    monkeypatch.setenv("AIRFLOW_VAR_ALERT_RECIPIENTS", "oncall@uni.test")
    monkeypatch.delenv("AIRFLOW__PIPELINES__ALERT_RECIPIENTS", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_LEARNING_PLATFORM_SHEETS", raising=False)
    report = {"recipients": ["analysts@uni.test"], "local_dir": str(tmp_path / "reports")}
    monkeypatch.setenv("AIRFLOW_VAR_LEARNING_PLATFORM_REPORT", json.dumps(report))


@pytest.fixture
def loaded_day(configured, warehouse, simulator, api_client) -> None:
    run_stages(warehouse, api_client)
    tasks.compute_stats(run_of())


@pytest.mark.parametrize(
    ("task_id", "clear_from"),
    [
        ("validate", "extract"),
        ("load", "extract"),
        ("compute_stats", "load"),
        ("check_quality", "compute_stats"),
        ("publish_report", "compute_stats"),
        ("send_email", "compute_stats"),
    ],
)
def test_a_task_missing_its_input_fails_at_once_saying_where_to_clear_the_run_from(
    configured, task_id: str, clear_from: str
) -> None:
    with pytest.raises(AirflowFailException, match=f"clear this run from `{clear_from}`"):
        call_body(task_id, run_of(), returned={}, outlet_events=OutletEventAccessors())


def test_a_landing_changed_since_extract_fails_validate_at_once(
    configured, warehouse, simulator, api_client
) -> None:
    extract_interval(warehouse, api_client, DAY, window=HOUR, dag_run_id="run")
    warehouse.execute("DELETE FROM learning_platform.raw_attempts WHERE position = 0")
    warehouse.commit()

    with pytest.raises(AirflowFailException, match="clear this run from `extract` to land the day again"):
        tasks.validate(run_of())


def test_a_landing_not_yet_validated_is_left_to_retries(configured, warehouse, simulator, api_client) -> None:
    """A concurrent run of the day may be validating its new landing: a later try can load."""
    extract_interval(warehouse, api_client, DAY, window=HOUR, dag_run_id="other_run")

    with pytest.raises(StagingIncomplete, match="run the validate task"):
        tasks.load(run_of(), OutletEventAccessors())


def test_an_invalid_settings_variable_fails_at_once_naming_it(loaded_day, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_LEARNING_PLATFORM_REPORT", json.dumps({"max_rejected_share": 2}))

    with pytest.raises(AirflowFailException, match="learning_platform_report: max_rejected_share"):
        tasks.check_quality(run_of())


def test_a_spreadsheet_that_is_not_a_key_fails_at_once_naming_the_variable(
    loaded_day, google: FakeGoogleSheets, monkeypatch
) -> None:
    connect_google(google, monkeypatch)
    monkeypatch.setenv("AIRFLOW_VAR_LEARNING_PLATFORM_REPORT", json.dumps({"spreadsheet": "Daily report"}))

    with pytest.raises(AirflowFailException, match="learning_platform_report: 'Daily report' is neither"):
        tasks.publish_report(run_of())


@pytest.mark.parametrize(
    ("shared_with", "what_to_do"),
    [(set(), "Share the spreadsheet with"), (None, "spreadsheet id is wrong")],
    ids=["403 not shared", "404 no such spreadsheet"],
)
def test_sheets_refusals_fail_publishing_at_once_saying_what_to_fix(
    loaded_day, google: FakeGoogleSheets, monkeypatch, shared_with, what_to_do
) -> None:
    connect_google(google, monkeypatch)
    if shared_with is None:
        del google.spreadsheets[SPREADSHEET]
    else:
        google.add_spreadsheet(SPREADSHEET, shared_with=shared_with)
    monkeypatch.setenv("AIRFLOW_VAR_LEARNING_PLATFORM_REPORT", json.dumps({"spreadsheet": SPREADSHEET}))

    with pytest.raises(AirflowFailException, match=what_to_do):
        tasks.publish_report(run_of())

    assert len(google.requests) <= 2, "a refusal is not retried (one token request, one call)"


def test_a_sheets_hiccup_is_retried_within_publishings_one_try(
    loaded_day, google: FakeGoogleSheets, monkeypatch
) -> None:
    connect_google(google, monkeypatch)
    monkeypatch.setenv("AIRFLOW_VAR_LEARNING_PLATFORM_REPORT", json.dumps({"spreadsheet": SPREADSHEET}))
    google.fail_next(503, times=1)

    published = tasks.publish_report(run_of())

    assert published["destination"] == "sheets"


def test_refused_api_credentials_fail_extract_at_once(configured, simulator, monkeypatch) -> None:
    api = {"conn_type": "http", "host": simulator.base_url, "login": CLIENT, "password": "revoked"}
    monkeypatch.setenv("AIRFLOW_CONN_LEARNING_PLATFORM_API", json.dumps(api))

    with pytest.raises(AirflowFailException, match="refused the credentials"):
        tasks.extract(run_of())


def test_an_api_outage_is_left_to_airflows_retries(configured, simulator, monkeypatch) -> None:
    api = {"conn_type": "http", "host": simulator.base_url, "login": CLIENT, "password": CLIENT_KEY}
    monkeypatch.setenv(
        "AIRFLOW_CONN_LEARNING_PLATFORM_API", json.dumps(api | {"extra": {"retry_attempts": 1}})
    )
    simulator.set_faults([{"kind": "error", "status": 503, "times": None}])

    with pytest.raises(TransientSourceError, match="503"):
        tasks.extract(run_of())


def test_a_run_nobody_would_hear_of_failing_stops_in_its_first_task(configured, monkeypatch) -> None:
    monkeypatch.delenv("AIRFLOW_VAR_ALERT_RECIPIENTS")

    with pytest.raises(AirflowFailException, match="Variable 'alert_recipients'"):
        tasks.migrate(run_of())
