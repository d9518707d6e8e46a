"""The README's ``make airflow``, driven through Airflow's UI in a real browser.

``python -m devservices.local_airflow`` (what ``make airflow`` runs) starts in its own process
with its own ports, PostgreSQL cluster, simulator and SMTP sink; Playwright drives Debian's
Chromium (``/usr/bin/chromium``, installed by ``scripts/install_test_tools.sh``) through the
same clicks a user makes: log in, trigger a chosen past day through the trigger form's Logical
Date (once in test mode), backfill a date range, trigger a day again. Where the UI lists a run
and on its page, the day it processed and its test mode must show. The warehouse is then read
directly. Screenshots land in ``.local/test-artifacts/ui`` (``PIPELINES_TEST_ARTIFACTS``
overrides it). The curl lines it prints for csv_column_sums' REST API are replayed with curl.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import psycopg
import pytest
import requests
from playwright.sync_api import Browser, Page, expect, sync_playwright

from devservices.airflow_cluster import ADMIN_USER, AirflowApi
from devservices.column_sums_demo import sample
from devservices.environment import PROJECT_ROOT, environment_without
from devservices.local_airflow import SUMS_SAMPLE_COLUMNS, SUMS_SAMPLE_ROWS
from devservices.postgres import LocalPostgres, free_port
from tests.artifacts import TEST_ARTIFACTS
from tests.test_end_to_end import api_connection, smtp_connection, warehouse_connection

pytestmark = pytest.mark.timeout(900)

DAG_ID = "learning_platform_etl"
MAINTENANCE_DAG_ID = "airflow_maintenance"
CHOSEN_DATE = date(2026, 11, 10)
TEST_MODE_DATE = date(2026, 11, 12)
FAILED_GATE_DATE = date(2026, 11, 14)
BACKFILL_FROM, BACKFILL_TO = date(2026, 11, 1), date(2026, 11, 3)
ADMIN_PASSWORD = "ui-test-password"
DB_PASSWORD = "ui-test-db-password"
RECEIVER_TOKEN = "ui-test-receiver-token"
ARTIFACTS = TEST_ARTIFACTS / "ui"
# Chromium as root in a sandbox-less container, and no calls home (the network is closed).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RUN_TIMEOUT_S = 300


class Deployment:
    def __init__(
        self, url: str, db_port: int, api: AirflowApi, simulator_url: str, receiver_url: str, state: Path
    ) -> None:
        self.url = url
        self.state = state
        self.db_port = db_port
        self.api = api
        self.simulator_url = simulator_url
        self.receiver_url = receiver_url

    def warehouse(self) -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1", port=self.db_port, user="postgres", password=DB_PASSWORD, dbname="warehouse"
        )


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """``make airflow`` in a process of its own, stopped with SIGTERM as a supervisor would."""
    state = tmp_path_factory.mktemp("make_airflow")
    ui_port, db_port, api_port, smtp_port = free_port(), free_port(), free_port(), free_port()
    receiver_port = free_port()
    env = environment_without(("AIRFLOW", "START_LOCAL"))  # make airflow reads SIMULATOR_*
    env.update(
        {
            "PIPELINES_LOCAL_DIR": str(state),
            "AIRFLOW_HOME": str(state / "airflow"),
            "AIRFLOW_CONN_LEARNING_PLATFORM_DB": warehouse_connection(db_port, "warehouse", DB_PASSWORD),
            "AIRFLOW_CONN_LEARNING_PLATFORM_TEST_DB": warehouse_connection(
                db_port, "warehouse_test", DB_PASSWORD
            ),
            # csv_column_sums keeps its results there (and its API reads them).
            "AIRFLOW_CONN_WAREHOUSE_DB": warehouse_connection(db_port, "warehouse", DB_PASSWORD),
            "AIRFLOW_CONN_LEARNING_PLATFORM_API": api_connection(
                f"http://127.0.0.1:{api_port}", "ui-client", "ui-key"
            ),
            "AIRFLOW_CONN_SMTP_DEFAULT": smtp_connection(smtp_port),
            "AIRFLOW_CONN_PROFILE_RECEIVER": json.dumps(
                {"conn_type": "http", "host": "127.0.0.1", "port": receiver_port, "password": RECEIVER_TOKEN}
            ),
            "AIRFLOW_VAR_LEARNING_PLATFORM_REPORT": json.dumps({"recipients": ["analysts@ui.test"]}),
            "AIRFLOW_VAR_ALERT_RECIPIENTS": "oncall@ui.test",
            "SIMULATOR_RECORDS_PER_DAY": "2000",
            # make airflow generates csv_folder_import's demo drop: a small one starts sooner.
            "CSV_DEMO_SIZE": "1MB",
            "LOCAL_AIRFLOW_ADMIN_PASSWORD": ADMIN_PASSWORD,
        }
    )
    command = [
        sys.executable,
        "-m",
        "devservices.local_airflow",
        "--port",
        str(ui_port),
        "--worker-log-port",
        str(free_port()),
        "--triggerer-log-port",
        str(free_port()),
    ]
    with (state / "make_airflow.log").open("wb") as out:
        process = subprocess.Popen(
            command, env=env, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{ui_port}"
    try:
        api = AirflowApi(url, ADMIN_USER, ADMIN_PASSWORD)
        _wait_for(lambda: process.poll() is not None or _ready(api), timeout_s=240, what="make airflow")
        assert process.poll() is None, (state / "make_airflow.log").read_text()[-3000:]
        yield Deployment(
            url,
            db_port,
            api,
            simulator_url=f"http://127.0.0.1:{api_port}",
            receiver_url=f"http://127.0.0.1:{receiver_port}",
            state=state,
        )
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            exit_code = process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
        finally:
            LocalPostgres(state_dir=state / "postgres", port=db_port).destroy()
    assert exit_code == 0, (state / "make_airflow.log").read_text()[-3000:]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, deployment: Deployment) -> Iterator[Page]:
    """A fresh browser session, logged in through the login form."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(deployment.url)
    page.get_by_label("Username").fill(ADMIN_USER)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    # The first page of a freshly started UI can take a while on a busy machine.
    expect(page.get_by_role("link", name="Dags")).to_be_visible(timeout=30_000)
    yield page
    context.close()


def test_make_airflow_starts_the_profile_receiver_with_the_connections_token(deployment: Deployment) -> None:
    # user_profiles_relay sends there; the receiver wants the connection's password as its token.
    assert requests.get(f"{deployment.receiver_url}/accepted", timeout=10).status_code == 401
    accepted = requests.get(
        f"{deployment.receiver_url}/accepted",
        headers={"Authorization": f"Bearer {RECEIVER_TOKEN}"},
        timeout=10,
    )
    assert accepted.status_code == 200
    assert "keys" in accepted.json()


def test_the_curl_lines_make_airflow_prints_get_the_column_sums_of_its_s3_sample(
    deployment: Deployment,
) -> None:
    lines = _wait_for(
        lambda: _printed_curl_lines(deployment), timeout_s=240, what="make airflow's curl lines"
    )
    login = lines[0].replace("<password>", ADMIN_PASSWORD)
    [submit_s3] = [line for line in lines if "-X POST" in line and "s3://" in line]
    [read_task] = [line for line in lines if "/column-sums/tasks/<task_id>" in line]

    submitted = json.loads(_bash(f"{login}\n{submit_s3}"))
    read = read_task.replace("<task_id>", submitted["task_id"])

    def finished() -> dict | None:
        answer = json.loads(_bash(f"{login}\n{read}"))
        return answer if answer["state"] in ("success", "failed") else None

    answer = _wait_for(finished, timeout_s=RUN_TIMEOUT_S, what="the S3 sample's sums")
    assert answer["state"] == "success", answer["error"]
    written = sample(SUMS_SAMPLE_ROWS, SUMS_SAMPLE_COLUMNS, root=deployment.state / "column_sums" / "root")
    assert [(column["name"], column["sum"]) for column in answer["result"]["columns"]] == [
        (column.name, column.sum) for column in written.expected
    ]


def _printed_curl_lines(deployment: Deployment) -> list[str] | None:
    printed = (deployment.state / "make_airflow.log").read_text(errors="replace")
    lines = [line.strip() for line in printed.splitlines() if line.startswith(("    TOKEN=", "    curl "))]
    return lines or None


def _bash(script: str) -> str:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=60, check=True
    ).stdout


def test_the_ui_asks_for_a_login(browser: Browser, deployment: Deployment) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{deployment.url}/dags/{DAG_ID}")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_label("Username").fill(ADMIN_USER)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(re.compile("invalid", re.IGNORECASE))).to_be_visible()
    screenshot(page, "login-refused")
    context.close()


def test_a_chosen_past_date_triggered_from_the_form_lands_in_the_warehouse(
    page: Page, deployment: Deployment
) -> None:
    run = trigger_from_form(page, deployment, CHOSEN_DATE, at="05:00")

    # The form's Logical Date is the day: the run is named after it and owns exactly that day.
    assert run["dag_run_id"].startswith(f"manual__{CHOSEN_DATE}__at_")
    assert run["logical_date"] == f"{CHOSEN_DATE}T05:00:00Z"
    assert (run["data_interval_start"], run["data_interval_end"]) == day_bounds(CHOSEN_DATE)
    assert deployment.api.wait_for_run(DAG_ID, run["dag_run_id"], timeout_s=RUN_TIMEOUT_S) == "success"
    run_page_shows_the_day(page, deployment, run["dag_run_id"], CHOSEN_DATE, test_mode=False)
    expect(page.get_by_test_id("state-badge").first).to_have_text("Success")
    screenshot(page, "run-succeeded")
    runs_list_names_the_day(page, deployment, run["dag_run_id"], CHOSEN_DATE)
    with deployment.warehouse() as conn:
        assert day_rows(conn, CHOSEN_DATE)[0] > 0
        assert stats_dates(conn) >= {CHOSEN_DATE}


def test_a_test_mode_run_says_so_where_it_is_listed_and_on_its_page(
    page: Page, deployment: Deployment
) -> None:
    run = trigger_from_form(page, deployment, TEST_MODE_DATE, at="05:00", test_mode=True)

    assert run["conf"]["test_mode"] is True
    # The note is written when the run starts, whatever test mode then does with the day.
    note = _wait_for(
        lambda: deployment.api.dag_run(DAG_ID, run["dag_run_id"])["note"],
        timeout_s=RUN_TIMEOUT_S,
        what="the note",
    )
    assert note == f"Processes UTC day **{TEST_MODE_DATE}** · **TEST MODE**"
    run_page_shows_the_day(page, deployment, run["dag_run_id"], TEST_MODE_DATE, test_mode=True)
    screenshot(page, "run-test-mode")
    runs_list_names_the_day(page, deployment, run["dag_run_id"], TEST_MODE_DATE)
    deployment.api.wait_for_run(DAG_ID, run["dag_run_id"], timeout_s=RUN_TIMEOUT_S)


def test_a_day_whose_quality_gate_failed_shows_failed_in_the_grid_though_its_report_went_out(
    page: Page, deployment: Deployment
) -> None:
    # Half the day's records without a student id: far over the 5 % the gate allows.
    simulator = requests.Session()
    simulator.put(
        f"{deployment.simulator_url}/_simulator/config", json={"defects": {"user_id_null": 0.5}}, timeout=10
    ).raise_for_status()
    try:
        run = trigger_from_form(page, deployment, FAILED_GATE_DATE, at="05:00")
        state = deployment.api.wait_for_run(DAG_ID, run["dag_run_id"], timeout_s=RUN_TIMEOUT_S)
    finally:
        simulator.post(f"{deployment.simulator_url}/_simulator/reset", timeout=10).raise_for_status()

    assert state == "failed"
    tasks = {ti["task_id"]: ti["state"] for ti in deployment.api.task_instances(DAG_ID, run["dag_run_id"])}
    assert tasks["check_quality"] == "failed"
    assert (tasks["publish_report"], tasks["send_email"]) == ("success", "success"), "the report went out"
    assert tasks["mark_run_failed"] == "failed"
    run_page_shows_the_day(page, deployment, run["dag_run_id"], FAILED_GATE_DATE, test_mode=False)
    expect(page.get_by_test_id("state-badge").first).to_have_text("Failed")
    # The grid: the run's bar is filled with the colour Airflow gives the state "failed" (the
    # colour of the failed badge above it), not the green of a successful day.
    page.goto(f"{deployment.url}/dags/{DAG_ID}")
    bar = page.locator(f"a[href$='/runs/{run['dag_run_id']}/'] > div").first
    expect(bar).to_be_visible(timeout=30_000)
    screenshot(page, "grid-failed-day")
    failed = page.locator("[data-testid='state-badge'][aria-label='failed']").first
    failed_colour = failed.evaluate("badge => getComputedStyle(badge).backgroundColor")
    assert failed_colour in bar.evaluate("bar => getComputedStyle(bar).backgroundImage")


def test_triggering_the_same_date_again_leaves_the_same_rows(page: Page, deployment: Deployment) -> None:
    with deployment.warehouse() as conn:
        before = day_rows(conn, CHOSEN_DATE)
    # Another time of the same day: a logical date belongs to one run.
    run = trigger_from_form(page, deployment, CHOSEN_DATE, at="06:00")
    assert deployment.api.wait_for_run(DAG_ID, run["dag_run_id"], timeout_s=RUN_TIMEOUT_S) == "success"
    with deployment.warehouse() as conn:
        assert day_rows(conn, CHOSEN_DATE) == before


def test_a_backfill_from_the_ui_fills_every_date_of_the_range_one_run_at_a_time(
    page: Page, deployment: Deployment
) -> None:
    page.goto(f"{deployment.url}/dags/{DAG_ID}")
    page.get_by_role("button", name="Trigger Dag").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Backfill", exact=True).click()
    pickers = page.get_by_test_id("datetime-input")
    for picker, day, label in ((pickers.nth(0), BACKFILL_FROM, "From"), (pickers.nth(1), BACKFILL_TO, "To")):
        # Each picker opens a popover outside the dialog, with a date and a time box.
        picker.click()
        date_box = page.get_by_role("textbox", name=label)
        date_box.fill(day.strftime("%Y/%m/%d"))
        page.get_by_placeholder("HH:mm").filter(visible=True).fill("00:00")
        page.keyboard.press("Escape")
        # Closed before the next one opens: two open popovers would each offer a time box.
        expect(date_box).to_be_hidden()
    preview = dialog.get_by_text(re.compile(r"\d+ runs? will be triggered"))
    expect(preview).to_be_visible()
    planned = int(re.match(r"\d+", preview.inner_text()).group())
    screenshot(page, "backfill-form")
    with page.expect_response(lambda r: r.url.endswith("/backfills") and r.request.method == "POST") as made:
        dialog.get_by_role("button", name="Run Backfill").click()
    assert made.value.ok, made.value.text()

    runs = wait_for_backfill_runs(deployment.api, planned)
    assert {run["state"] for run in runs} == {"success"}
    # From the 1st to the 3rd means those days: each run's logical date is the day it processed.
    days = {datetime.fromisoformat(run["logical_date"]).date() for run in runs}
    assert days == {
        date.fromordinal(day) for day in range(BACKFILL_FROM.toordinal(), BACKFILL_TO.toordinal() + 1)
    }
    for run in runs:
        day = datetime.fromisoformat(run["logical_date"]).date()
        assert (run["data_interval_start"], run["data_interval_end"]) == day_bounds(day)
        assert run["note"] == f"Processes UTC day **{day}** · full day"
    # The form's max active runs (1 by default) held: no two backfill runs overlapped.
    spans = sorted((run["start_date"], run["end_date"]) for run in runs)
    assert all(previous_end <= start for (_, previous_end), (start, _) in itertools.pairwise(spans))
    with deployment.warehouse() as conn:
        assert stats_dates(conn) >= days
        for day in days:
            assert day_rows(conn, day)[0] > 0
    page.goto(f"{deployment.url}/dags/{DAG_ID}/runs")
    expect(page.get_by_test_id("state-badge").first).to_be_visible(timeout=30_000)
    screenshot(page, "runs-after-backfill")
    # Airflow names backfill runs after the end of their day; the run page says which day it is.
    first = min(runs, key=lambda run: run["logical_date"])
    run_page_shows_the_day(page, deployment, first["dag_run_id"], BACKFILL_FROM, test_mode=False)
    screenshot(page, "backfill-run")


def test_the_maintenance_dag_cleans_metadata_from_a_real_worker(deployment: Deployment) -> None:
    """The scheduler runs airflow_maintenance's latest interval at start-up. Under a real
    executor its tasks have no metadata database of their own (Airflow 3 blocks it), so this
    proves ``clean_metadata`` reaches it through the airflow_metadata_db connection."""

    def finished() -> list[dict] | None:
        runs = deployment.api.dag_runs(MAINTENANCE_DAG_ID)
        return runs if runs and all(run["state"] in {"success", "failed"} for run in runs) else None

    runs = _wait_for(finished, timeout_s=RUN_TIMEOUT_S, what=MAINTENANCE_DAG_ID)
    for run in runs:
        states = {
            ti["task_id"]: ti["state"]
            for ti in deployment.api.task_instances(MAINTENANCE_DAG_ID, run["dag_run_id"])
        }
        assert states == {
            "delete_old_logs": "success",
            "clean_metadata": "success",
            "drop_old_landing": "success",
        }


# --- helpers ----------------------------------------------------------------------------------


def trigger_from_form(
    page: Page, deployment: Deployment, day: date, *, at: str, test_mode: bool = False
) -> dict:
    """Set the trigger form's Logical Date to ``day`` at ``at`` (UTC), submit; the run the UI created."""
    page.goto(f"{deployment.url}/dags/{DAG_ID}")
    page.get_by_role("button", name="Trigger Dag").first.click()
    dialog = page.get_by_role("dialog")
    # The picker opens a popover outside the dialog, with a date and a time box.
    dialog.get_by_test_id("datetime-input").first.click()
    date_box = page.get_by_placeholder("YYYY/MM/DD")
    date_box.fill(day.strftime("%Y/%m/%d"))
    page.get_by_placeholder("HH:mm").filter(visible=True).fill(at)
    page.keyboard.press("Escape")
    expect(date_box).to_be_hidden()
    if test_mode:
        # The switch's input is hidden behind its visible control, its parent.
        dialog.locator("input[name='element_test_mode']").locator("xpath=..").click()
        expect(dialog.locator("input[name='element_test_mode']")).to_be_checked()
    screenshot(page, f"trigger-form-{day}")
    with page.expect_response(lambda r: r.url.endswith("/dagRuns") and r.request.method == "POST") as created:
        dialog.get_by_test_id("trigger-dag-submit").click()
    assert created.value.ok, created.value.text()
    return created.value.json()


def run_page_shows_the_day(
    page: Page, deployment: Deployment, run_id: str, day: date, *, test_mode: bool
) -> None:
    """The run's page: its logical date is the day, and its note names the day and the mode."""
    page.goto(f"{deployment.url}/dags/{DAG_ID}/runs/{run_id}")
    logical_date = page.get_by_role("heading", name="Logical Date", exact=True).locator("xpath=..")
    expect(logical_date).to_contain_text(day.isoformat(), timeout=30_000)
    note = page.get_by_text(f"Processes UTC day {day}")
    expect(note).to_be_visible()
    expect(note).to_contain_text("TEST MODE" if test_mode else "full day")


def runs_list_names_the_day(page: Page, deployment: Deployment, run_id: str, day: date) -> None:
    page.goto(f"{deployment.url}/dags/{DAG_ID}/runs")
    link = page.get_by_role("link", name=run_id, exact=True)
    expect(link).to_be_visible(timeout=30_000)
    expect(link).to_contain_text(day.isoformat())


def day_bounds(day: date) -> tuple[str, str]:
    """A UTC day as the REST API writes a data interval."""
    return f"{day}T00:00:00Z", f"{date.fromordinal(day.toordinal() + 1)}T00:00:00Z"


def wait_for_backfill_runs(api: AirflowApi, planned: int) -> list[dict]:
    """The runs of the (only) backfill, once all ``planned`` of them have finished."""

    def finished() -> list[dict] | None:
        runs = [run for run in api.dag_runs(DAG_ID) if run["run_type"] == "backfill"]
        if len(runs) == planned and all(run["state"] in {"success", "failed"} for run in runs):
            return runs
        return None

    return _wait_for(finished, timeout_s=RUN_TIMEOUT_S * planned, what="the backfill")


def day_rows(conn: psycopg.Connection, day: date) -> tuple[int, str, int]:
    """How many attempts the day holds, a digest of their natural keys, and its quarantine."""
    attempts, digest = conn.execute(
        "SELECT count(*), md5(coalesce(string_agg(source_window_start || '/' || source_position, ',' "
        "ORDER BY source_window_start, source_position), '')) "
        "FROM learning_platform.attempts WHERE created_at >= %s AND created_at < %s + 1",
        (day, day),
    ).fetchone()
    quarantined = conn.execute(
        "SELECT count(*) FROM learning_platform.quarantined_attempts "
        "WHERE source_window_start >= %s AND source_window_start < %s + 1",
        (day, day),
    ).fetchone()[0]
    return attempts, digest, quarantined


def stats_dates(conn: psycopg.Connection) -> set[date]:
    return {row[0] for row in conn.execute("SELECT stats_date FROM learning_platform.daily_stats")}


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def _ready(api: AirflowApi) -> bool:
    try:
        return api.healthy() and api.dag_is_parsed(DAG_ID)
    except Exception:
        return False


def _wait_for(condition, *, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(2)
    raise TimeoutError(f"{what}: not done in {timeout_s:.0f} s")
