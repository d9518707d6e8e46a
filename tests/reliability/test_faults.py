"""The fault table: each fault injected into a real component, and what the day ends up as.

Every test runs a day of ``learning_platform_etl`` task by task with Airflow's retry semantics
(tests/reliability/harness.py) against the real simulator, PostgreSQL, SMTP server and Sheets
fake, injects one fault, and compares the warehouse (attempts, quarantine, figures), the sheet
and the outbox with a clean run of the same day from the same source data: rows lost, rows
doubled, emails sent. Each adds its row to the table in docs/RELIABILITY.md.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
import responses
from aiosmtpd.smtp import SMTP, Envelope, Session

from devservices.simulator import SimulatorServer
from devservices.smtp_sink import SERVER_NAME, AnyPortController, OutboxHandler
from include.learning_platform.sheets_report import serial_day
from tests.fakes.google_sheets import FakeGoogleSheets
from tests.include.learning_platform.stages import DAG_TASKS
from tests.include.learning_platform.test_report_tasks import SPREADSHEET, connect_google
from tests.reliability.conftest import API_ATTEMPTS, Deployment, holding_lock, smtp, wait_until_blocked
from tests.reliability.harness import DayRun, DayState, Outcome, run_task_in_worker
from tests.reliability.workers import Worker
from tests.test_end_to_end import received

pytestmark = pytest.mark.timeout(300)

DAY = date(2026, 11, 16)
OTHER_DAY = date(2026, 11, 17)


@pytest.fixture(scope="module")
def clean_runs() -> dict[date, DayState]:
    return {}


@pytest.fixture
def clean(deployment: Deployment, clean_runs: dict[date, DayState], monkeypatch: pytest.MonkeyPatch):
    """The state a fault-free run leaves for a day, computed once per day in a database of its own."""

    def state(day: date) -> DayState:
        if day not in clean_runs:
            database = f"clean_{day:%Y%m%d}"
            deployment.cluster.drop_database(database)
            deployment.cluster.create_database(database)
            clean = Deployment(deployment.cluster, database, deployment.outbox.parent / "clean_outbox", 0)
            with monkeypatch.context() as patch, smtp(clean) as sink:
                clean.smtp_port = sink.port
                _point_at(patch, clean)
                run = clean.run(day)
                assert run.succeeded, run.errors
                clean_runs[day] = clean.state(day)
        return clean_runs[day]

    return state


def record(
    fault_table: list[dict[str, Any]],
    *,
    fault: str,
    injection: str,
    behaviour: str,
    outcome: Outcome,
    **extra: Any,
) -> None:
    fault_table.append(
        {"fault": fault, "injection": injection, "behaviour": behaviour, **asdict(outcome), **extra}
    )


def assert_clean(outcome: Outcome, *, emails: int = 1) -> None:
    assert outcome.rows_lost == 0
    assert outcome.rows_doubled == 0
    assert outcome.stats_equal
    assert outcome.emails == emails


# --- the statistics API ------------------------------------------------------------------------

API_FAULTS = {
    "5xx burst": ({"kind": "error", "status": 503, "times": 3}, "3 answers 503 in a row"),
    "5xx outage longer than a try": (
        {"kind": "error", "status": 503, "times": API_ATTEMPTS},
        f"{API_ATTEMPTS} answers 503 in a row (a window's {API_ATTEMPTS} attempts)",
    ),
    "429 with Retry-After": (
        {"kind": "rate_limit", "retry_after": 1, "times": 2},
        "2 answers 429, Retry-After: 1",
    ),
    "read timeout": (
        {"kind": "stall", "seconds": 4, "times": 1},
        "1 answer stalled 4 s (client timeout 2 s)",
    ),
    "body cut mid-way": (
        {"kind": "cut_body", "fraction": 0.5, "times": 1},
        "1 body closed at half its length",
    ),
    "malformed JSON": ({"kind": "malformed_json", "times": 1}, "1 body not valid JSON"),
}


@pytest.mark.parametrize("fault", API_FAULTS)
def test_api_faults_are_retried_and_the_day_ends_as_a_clean_run(
    fault: str, deployment: Deployment, simulator: SimulatorServer, clean, fault_table
) -> None:
    rule, injection = API_FAULTS[fault]
    expected = clean(DAY)
    simulator.configure(faults=[rule])
    requests_before = simulator.stats()["requests"]["total"]
    with smtp(deployment):
        run = deployment.run(DAY)
    stats = simulator.stats()
    requests_made = stats["requests"]["total"] - requests_before

    assert run.succeeded, run.errors
    assert all(f["times_left"] == 0 for f in stats["faults"]), "the fault was not injected"
    outcome = Outcome.compare(expected, deployment.state(DAY))
    record(
        fault_table,
        fault=f"API: {fault}",
        injection=f"simulator fault rule: {injection}",
        behaviour=(
            f"retried within extract's try ({requests_made} requests for 24 hourly windows); "
            if run.tries["extract"] == 1
            else f"extract's first try used up a window's attempts, its retry fetched the day "
            f"({requests_made} requests for 24 hourly windows); "
        )
        + run.behaviour(),
        outcome=outcome,
    )
    assert_clean(outcome)


def test_wrong_credentials_fail_at_once_and_a_rerun_with_the_right_key_is_clean(
    deployment: Deployment, simulator: SimulatorServer, clean, fault_table, monkeypatch
) -> None:
    expected = clean(DAY)
    right = os.environ["AIRFLOW_CONN_LEARNING_PLATFORM_API"]
    wrong = json.loads(right) | {"password": "not-the-key"}
    monkeypatch.setenv("AIRFLOW_CONN_LEARNING_PLATFORM_API", json.dumps(wrong))
    requests_before = simulator.stats()["requests"]["total"]
    with smtp(deployment):
        failed = deployment.run(DAY)
        requests_made = simulator.stats()["requests"]["total"] - requests_before
        nothing = deployment.state(DAY)
        monkeypatch.setenv("AIRFLOW_CONN_LEARNING_PLATFORM_API", right)
        rerun = deployment.run(DAY, run_id="manual__fixed_key")

    assert failed.states["extract"] == "failed"
    assert failed.tries["extract"] == 1, "a refused key must not be retried"
    assert requests_made == 1
    assert (nothing.attempts, nothing.quarantine, nothing.stats, nothing.emails) == ({}, {}, None, 0)
    assert rerun.succeeded, rerun.errors
    outcome = Outcome.compare(expected, deployment.state(DAY))
    record(
        fault_table,
        fault="API: wrong credentials",
        injection="the API connection's password changed",
        behaviour=f"extract failed for good after {requests_made} request, no retry, no report; "
        "rerun with the right key: clean",
        outcome=outcome,
    )
    assert_clean(outcome)


def test_a_window_malformed_on_every_attempt_fails_extract_keeping_the_answer_and_a_rerun_is_clean(
    deployment: Deployment, simulator: SimulatorServer, clean, fault_table
) -> None:
    expected = clean(DAY)
    simulator.configure(faults=[{"kind": "malformed_json", "times": None}])
    with smtp(deployment):
        failed = deployment.run(DAY, retries=1)
        with psycopg.connect(deployment.conninfo) as conn:
            kept = conn.execute("SELECT count(*) FROM learning_platform.malformed_answers").fetchone()
        nothing = deployment.state(DAY)
        simulator.configure(faults=[])
        rerun = deployment.run(DAY, run_id="manual__source_fixed")

    assert failed.states["extract"] == "failed"
    assert failed.tries["extract"] == 2
    assert "window [2026-11-16T00:00:00+00:00" in failed.errors["extract"]
    assert "learning_platform.malformed_answers" in failed.errors["extract"]
    assert kept == (1,)
    assert (nothing.attempts, nothing.quarantine, nothing.stats, nothing.emails) == ({}, {}, None, 0)
    assert rerun.succeeded, rerun.errors
    outcome = Outcome.compare(expected, deployment.state(DAY))
    record(
        fault_table,
        fault="API: malformed JSON on every attempt",
        injection="simulator fault rule: every body not valid JSON",
        behaviour="extract failed after its retries, naming the window; the window's last answer "
        "kept in malformed_answers; nothing published, no report; rerun once the API answers: clean",
        outcome=outcome,
    )
    assert_clean(outcome)


def test_an_empty_day_is_published_as_no_data(
    deployment: Deployment, simulator: SimulatorServer, fault_table
) -> None:
    simulator.configure(empty_dates=[DAY.isoformat()])
    with smtp(deployment):
        run = deployment.run(DAY)
    state = deployment.state(DAY)

    assert run.succeeded, run.errors
    assert state.stats[:3] == (0, 0, 0)
    empty = DayState(state.attempts.__class__(), state.quarantine.__class__(), state.stats, None, 1)
    outcome = Outcome.compare(empty, state)
    record(
        fault_table,
        fault="API: empty day, new warehouse",
        injection="the simulator serves no records for the day; no earlier days on record",
        behaviour="run succeeded; figures 0 fetched / 0 loaded, the report says no data; " + run.behaviour(),
        outcome=outcome,
    )
    assert_clean(outcome)


def test_an_empty_day_after_normal_days_fails_the_gate_and_is_published_as_unreliable(
    deployment: Deployment, simulator: SimulatorServer, fault_table
) -> None:
    earlier = [date.fromordinal(DAY.toordinal() - n) for n in (3, 2, 1)]
    simulator.configure(empty_dates=[DAY.isoformat()])
    with smtp(deployment):
        for day in earlier:
            assert deployment.run(day, run_id=f"scheduled__{day}").succeeded
        run = deployment.run(DAY)
    state = deployment.state(DAY)

    assert run.states["check_quality"] == "failed"
    assert run.tries["check_quality"] == 1, "judging the same figures again cannot change the verdict"
    assert "volume_normal (observed 0 judged" in run.errors["check_quality"]
    assert "quiet_days" in run.errors["check_quality"]
    assert (run.states["publish_report"], run.states["send_email"]) == ("success", "success")
    assert state.stats[:3] == (0, 0, 0)
    empty = DayState(state.attempts.__class__(), state.quarantine.__class__(), state.stats, None, 1)
    outcome = Outcome.compare(empty, state)
    record(
        fault_table,
        fault="API: empty day after normal days",
        injection="the simulator serves no records for the day; 3 normal days before it",
        behaviour="check_quality failed for good (volume_normal: 0 judged, the message says to declare "
        "a holiday in quiet_days or have the API serve the day), report and email went out marked "
        "unreliable; " + run.behaviour(),
        outcome=outcome,
    )
    assert_clean(outcome)


# --- PostgreSQL ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("task_id", "table"), [("load", "attempts"), ("compute_stats", "daily_stats")])
def test_postgres_stopped_mid_task_then_started_again(
    task_id: str, table: str, deployment: Deployment, clean, fault_table
) -> None:
    """The task's transaction is held up by a lock on ``table`` (so it is surely mid-way), the
    server is stopped under it and started again; Airflow's retry then runs the task again."""
    expected = clean(DAY)
    restarted = threading.Event()

    def stop_server_under_the_task(lock: holding_lock) -> None:
        with lock:
            wait_until_blocked(deployment.conninfo)
            deployment.cluster.stop(force=True)
        deployment.cluster.start()
        restarted.set()

    def before_try(task: str, try_number: int) -> None:
        if task == task_id and try_number == 1:
            # Taken before the try starts, so the task surely waits on it mid-transaction.
            lock = holding_lock(deployment.conninfo, table).acquire()
            threading.Thread(target=stop_server_under_the_task, args=(lock,), daemon=True).start()
        elif task == task_id:
            assert restarted.wait(60), "the server did not come back"

    with smtp(deployment):
        run = deployment.run(DAY, before_try=before_try)

    assert run.succeeded, run.errors
    assert run.tries[task_id] == 2
    outcome = Outcome.compare(expected, deployment.state(DAY))
    record(
        fault_table,
        fault=f"PostgreSQL stopped in the middle of {task_id}",
        injection=f"{task_id}'s transaction held on a lock of {table}, `pg_ctl stop -m fast`, then start",
        behaviour=f"{task_id}'s try failed on the lost connection, its transaction rolled back; "
        "the retry completed the day; " + run.behaviour(),
        outcome=outcome,
    )
    assert_clean(outcome)


def test_a_worker_killed_mid_load_leaves_nothing_and_the_next_try_recovers(
    deployment: Deployment, clean, fault_table
) -> None:
    expected = clean(DAY)

    def before_try(task: str, try_number: int) -> None:
        if task == "load" and try_number == 1:
            # The first try runs in a process of its own, killed while its transaction is open;
            # the harness's own call is then the next try, as Airflow's retry would be.
            run.tries["load"] += 1
            with holding_lock(deployment.conninfo, "attempts"):
                worker = Worker(run_task_in_worker, DAY, "load", {})
                wait_until_blocked(deployment.conninfo)
                worker.send_signal(signal.SIGKILL)
                assert worker.wait(30) == -signal.SIGKILL

    run = DayRun(DAY, before_try=before_try)
    with smtp(deployment):
        run.run()

    assert run.succeeded, run.errors
    assert run.tries["load"] == 2
    outcome = Outcome.compare(expected, deployment.state(DAY))
    record(
        fault_table,
        fault="worker killed mid-task (SIGKILL)",
        injection="load's process killed with SIGKILL while its transaction was open",
        behaviour="PostgreSQL rolled the killed try back when its connection dropped; the next try "
        "loaded the day; " + run.behaviour(),
        outcome=outcome,
    )
    assert_clean(outcome)


# --- mail and Sheets ----------------------------------------------------------------------------


def test_smtp_down_then_up_sends_exactly_one_email(deployment: Deployment, clean, fault_table) -> None:
    expected = clean(DAY)
    sink = smtp(deployment)

    def before_try(task: str, try_number: int) -> None:
        if task == "send_email" and try_number == 2:
            sink.__enter__()  # the server comes back before the retry

    try:
        run = deployment.run(DAY, before_try=before_try)
    finally:
        sink.__exit__(None, None, None)

    assert run.succeeded, run.errors
    assert run.tries["send_email"] == 2
    outcome = Outcome.compare(expected, deployment.state(DAY))
    record(
        fault_table,
        fault="SMTP server down, then up",
        injection="no server on the SMTP port for send_email's first try",
        behaviour="send_email's first try failed (connection refused), the retry sent it; " + run.behaviour(),
        outcome=outcome,
    )
    assert_clean(outcome)


class AcceptThenHoldTheLedger(OutboxHandler):
    """Keeps the message, then locks the report_emails rows and answers 250: the worker's record
    of that 250 waits on the lock, which is where the test kills it."""

    def __init__(self, outbox: Path, conninfo: str) -> None:
        super().__init__(outbox)
        self.ledger = psycopg.connect(conninfo)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        self.ledger.execute("SELECT FROM learning_platform.report_emails FOR UPDATE")
        return answer


def test_a_worker_killed_after_the_server_accepted_the_email_sends_no_second_copy(
    deployment: Deployment, clean, fault_table
) -> None:
    expected = clean(DAY)
    deployment.outbox.mkdir(parents=True, exist_ok=True)
    handler = AcceptThenHoldTheLedger(deployment.outbox, deployment.conninfo)
    server = AnyPortController(
        handler, hostname="127.0.0.1", port=deployment.smtp_port, server_hostname=SERVER_NAME
    )

    def before_try(task: str, try_number: int) -> None:
        if task == "send_email" and try_number == 1:
            # The first try runs in a process of its own, killed once the server has answered 250
            # and while it waits to record that; the harness's own call is then the retry.
            run.tries["send_email"] += 1
            published = {"publish_report": run.xcoms["publish_report"]}
            worker = Worker(run_task_in_worker, DAY, "send_email", published)
            wait_until_blocked(deployment.conninfo)
            assert len(list(deployment.outbox.glob("*.eml"))) == 1, "the server has the message"
            worker.send_signal(signal.SIGKILL)
            assert worker.wait(30) == -signal.SIGKILL
            handler.ledger.rollback()

    run = DayRun(DAY, before_try=before_try)
    server.start()
    try:
        run.run()
    finally:
        server.stop()
        handler.ledger.close()

    assert run.tries["send_email"] == 2
    assert run.states["send_email"] == "failed", "an unconfirmed email fails for good, unsent"
    assert "clear this task" in run.errors["send_email"]
    assert all(run.states[task] == "success" for task in DAG_TASKS if task != "send_email"), run.errors
    with psycopg.connect(deployment.conninfo) as conn:
        ledger = conn.execute(
            "SELECT handed_over_at IS NOT NULL, sent_at IS NOT NULL FROM learning_platform.report_emails"
        ).fetchall()
    assert ledger == [(True, False)]
    outcome = Outcome.compare(expected, deployment.state(DAY))
    record(
        fault_table,
        fault="worker killed after the SMTP server accepted the report email (SIGKILL)",
        injection="send_email's process killed with SIGKILL after the server's 250, before it recorded it",
        behaviour="the retry found the email handed over but unconfirmed and did not send it again; "
        "send_email failed for good naming the Message-ID to look for (clearing it mails anew); "
        + run.behaviour(),
        outcome=outcome,
    )
    assert_clean(outcome)


@pytest.mark.parametrize(("status", "times"), [(429, 2), (500, 2)])
def test_sheets_errors_back_off_then_one_row_per_date(
    status: int,
    times: int,
    deployment: Deployment,
    simulator: SimulatorServer,
    clean,
    fault_table,
    monkeypatch,
    sheets_beside,
) -> None:
    expected = clean(DAY)
    google = sheets_beside(simulator)
    connect_google(google, monkeypatch)
    report = json.loads(os.environ["AIRFLOW_VAR_LEARNING_PLATFORM_REPORT"]) | {"spreadsheet": SPREADSHEET}
    monkeypatch.setenv("AIRFLOW_VAR_LEARNING_PLATFORM_REPORT", json.dumps(report))
    with smtp(deployment):
        first = deployment.run(DAY)
        google.fail_next(status, times=times, retry_after="1" if status == 429 else None)
        rerun = deployment.run(DAY, run_id="manual__rerun")
        deployment.run(OTHER_DAY)
    failed_requests = sum(1 for request in google.requests if request.status == status)
    history = [row[0] for row in google.values(SPREADSHEET, "History")[1:]]

    assert first.succeeded, first.errors
    assert rerun.succeeded, rerun.errors
    assert failed_requests == times
    assert history == [serial_day(DAY), serial_day(OTHER_DAY)]
    outcome = Outcome.compare(expected, deployment.state(DAY, sheet_rows=history.count(serial_day(DAY))))
    record(
        fault_table,
        fault=f"Google Sheets {status}",
        injection=f"{times} Sheets requests answered {status} during a rerun of the day",
        behaviour="bounded backoff within publish_report's try, then the date's row updated in place "
        "(the day ran twice, a clean run then the faulted rerun: one email each)",
        outcome=outcome,
        sheet_rows_per_date=1,
    )
    assert_clean(outcome, emails=2)


def test_a_sheet_not_shared_fails_publishing_at_once_and_the_email_says_so(
    deployment: Deployment, simulator: SimulatorServer, clean, fault_table, monkeypatch, sheets_beside
) -> None:
    expected = clean(DAY)
    google = sheets_beside(simulator)
    connect_google(google, monkeypatch)
    google.add_spreadsheet(SPREADSHEET, shared_with=set())
    report = json.loads(os.environ["AIRFLOW_VAR_LEARNING_PLATFORM_REPORT"]) | {"spreadsheet": SPREADSHEET}
    monkeypatch.setenv("AIRFLOW_VAR_LEARNING_PLATFORM_REPORT", json.dumps(report))
    with smtp(deployment):
        run = deployment.run(DAY)

    assert (run.states["publish_report"], run.tries["publish_report"]) == ("failed", 1)
    assert "Share the spreadsheet with" in run.errors["publish_report"]
    assert run.states["send_email"] == "success"
    [mail] = received(deployment.outbox)
    assert mail["Subject"].endswith("report NOT updated")
    outcome = Outcome.compare(expected, deployment.state(DAY))
    record(
        fault_table,
        fault="Google Sheets 403 (sheet not shared)",
        injection="the spreadsheet is not shared with the service account",
        behaviour="publish_report failed at once (1 try, no backoff, saying whom to share it with); "
        "send_email mailed the report saying it was NOT updated; the run ends failed",
        outcome=outcome,
    )
    assert_clean(outcome)


# --- concurrency --------------------------------------------------------------------------------


def test_two_dates_at_once_and_the_same_date_twice(deployment: Deployment, clean, fault_table) -> None:
    expected = {day: clean(day) for day in (DAY, OTHER_DAY)}
    runs = [
        DayRun(DAY, run_id="manual__a"),
        DayRun(OTHER_DAY, run_id="manual__b"),
        DayRun(DAY, run_id="manual__c"),
    ]
    with smtp(deployment):
        threads = [threading.Thread(target=run.run) for run in runs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(240)

    assert all(run.succeeded for run in runs), [run.errors for run in runs]
    outcomes = {day: Outcome.compare(expected[day], deployment.state(day)) for day in expected}
    for day, outcome in outcomes.items():
        record(
            fault_table,
            fault="concurrent runs: " + ("the same date twice" if day == DAY else "another date alongside"),
            injection="three runs in threads at once: two of 2026-11-16, one of 2026-11-17",
            behaviour="every run succeeded; each day holds the clean run's rows once "
            "(one email per run of the day)",
            outcome=outcome,
        )
        assert_clean(outcome, emails=2 if day == DAY else 1)


# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture
def sheets_beside() -> Iterator[Callable[[SimulatorServer], FakeGoogleSheets]]:
    """The Sheets fake, letting requests to the simulator through (the fake answers all others)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:

        def start(simulator: SimulatorServer) -> FakeGoogleSheets:
            mock.add_passthru(simulator.base_url)
            return FakeGoogleSheets(mock)

        yield start


def _point_at(patch: pytest.MonkeyPatch, target: Deployment) -> None:
    connection = json.loads(os.environ["AIRFLOW_CONN_LEARNING_PLATFORM_DB"]) | {"schema": target.database}
    patch.setenv("AIRFLOW_CONN_LEARNING_PLATFORM_DB", json.dumps(connection))
    smtp_connection = json.loads(os.environ["AIRFLOW_CONN_SMTP_DEFAULT"]) | {"port": target.smtp_port}
    patch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(smtp_connection))
