"""The README's run command, end to end: local services, ``airflow dags test``, the report.

These tests run ``python -m devservices.local_run`` (what ``make run`` calls) in a separate
process with its own Airflow home, state folder and ports, so they exercise exactly what a
newcomer runs, including start-up and shutdown of the local PostgreSQL and the simulator.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path

import psycopg
import pytest

from devservices.environment import PROJECT_ROOT, airflow_environment, environment_without
from devservices.postgres import LocalPostgres, free_port
from devservices.smtp_sink import SmtpSink
from tests.conftest import CLIENT, CLIENT_KEY, PIPELINE_PASSWORD, PIPELINE_ROLE

pytestmark = pytest.mark.timeout(600)

DATE = "2026-11-20"
RECORDS_PER_DAY = 3000
DB_PASSWORD = "e2e-password"
API_KEY = "e2e-key"


def warehouse_connection(port: int, database: str, password: str, login: str = "postgres") -> str:
    """An ``AIRFLOW_CONN_*`` value (JSON form) for a local PostgreSQL database."""
    fields = {
        "host": "127.0.0.1",
        "port": port,
        "schema": database,
        "login": login,
        "password": password,
    }
    return json.dumps({"conn_type": "postgres", **fields})


def api_connection(base_url: str, client: str, client_key: str, **extra: object) -> str:
    """An ``AIRFLOW_CONN_*`` value (JSON form) for the statistics API."""
    fields = {"conn_type": "http", "host": base_url, "login": client, "password": client_key}
    return json.dumps({**fields, "extra": extra} if extra else fields)


def smtp_connection(port: int) -> str:
    """An ``AIRFLOW_CONN_*`` value (JSON form) for a plain local SMTP server."""
    extra = {"disable_ssl": True, "disable_tls": True, "from_email": "airflow@e2e.test", "timeout": 10}
    return json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": port, "extra": extra})


def received(outbox: Path) -> list[EmailMessage]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(outbox.glob("*.eml"))
    ]


@pytest.fixture(scope="module")
def run_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    state = tmp_path_factory.mktemp("local_run")
    db_port, api_port, smtp_port = free_port(), free_port(), free_port()
    env = environment_without()
    env.update(
        {
            "PIPELINES_LOCAL_DIR": str(state),
            "AIRFLOW_HOME": str(state / "airflow"),
            "AIRFLOW_CONN_LEARNING_PLATFORM_DB": warehouse_connection(db_port, "warehouse", DB_PASSWORD),
            "AIRFLOW_CONN_LEARNING_PLATFORM_TEST_DB": warehouse_connection(
                db_port, "warehouse_test", DB_PASSWORD
            ),
            "AIRFLOW_CONN_LEARNING_PLATFORM_API": api_connection(
                f"http://127.0.0.1:{api_port}", "e2e-client", API_KEY
            ),
            "AIRFLOW_CONN_SMTP_DEFAULT": smtp_connection(smtp_port),
            "AIRFLOW_VAR_LEARNING_PLATFORM_REPORT": json.dumps({"recipients": ["analysts@e2e.test"]}),
            "AIRFLOW_VAR_ALERT_RECIPIENTS": "oncall@e2e.test",
            "SIMULATOR_RECORDS_PER_DAY": str(RECORDS_PER_DAY),
            "AIRFLOW__PIPELINES__TASK_RETRIES": "1",
            "AIRFLOW__PIPELINES__RETRY_DELAY_SECONDS": "1",
        }
    )
    env["db_port"], env["api_port"], env["smtp_port"] = str(db_port), str(api_port), str(smtp_port)
    yield env
    # `make run` keeps its cluster between runs on purpose; a test's cluster must go.
    LocalPostgres(state_dir=state / "postgres", port=db_port).destroy()


@contextmanager
def warehouse_run_environment(
    state: Path, *, db_password: str, alert_recipient: str
) -> Iterator[dict[str, str]]:
    """``make run``'s environment for a DAG that needs the warehouse and the SMTP sink, not the
    learning platform's API: its own state folder, Airflow home and free ports, no task retries.

    The cluster the runs leave in ``state`` is destroyed on the way out.
    """
    db_port, smtp_port = free_port(), free_port()
    env = environment_without()
    warehouse = warehouse_connection(db_port, "warehouse", db_password)
    env.update(
        {
            "PIPELINES_LOCAL_DIR": str(state),
            "AIRFLOW_HOME": str(state / "airflow"),
            # make run's local PostgreSQL is the learning platform's; warehouse_db shares it.
            "AIRFLOW_CONN_LEARNING_PLATFORM_DB": warehouse,
            "AIRFLOW_CONN_LEARNING_PLATFORM_TEST_DB": warehouse_connection(
                db_port, "warehouse_test", db_password
            ),
            "AIRFLOW_CONN_WAREHOUSE_DB": warehouse,
            "AIRFLOW_CONN_SMTP_DEFAULT": smtp_connection(smtp_port),
            "AIRFLOW_VAR_ALERT_RECIPIENTS": alert_recipient,
            "AIRFLOW__PIPELINES__TASK_RETRIES": "0",
            "START_LOCAL_SIMULATOR": "0",
            "db_port": str(db_port),
        }
    )
    try:
        yield env
    finally:
        LocalPostgres(state_dir=state / "postgres", port=db_port).destroy()


def local_run(env: dict[str, str], *args: str, timeout_s: float = 540) -> subprocess.CompletedProcess[str]:
    """``make run``'s command (``--dag`` among ``args`` picks another DAG than the flagship)."""
    return subprocess.run(
        [sys.executable, "-m", "devservices.local_run", *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def printed_counts(output: str) -> dict[str, int]:
    return {
        name: int(value.replace(",", ""))
        for name, value in re.findall(
            r"^(fetched|loaded|quarantined|boundary)\s+([\d,]+)", output, re.MULTILINE
        )
    }


def port_is_closed(port: str) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", int(port))) != 0


@contextmanager
def reopened_warehouse(
    env: dict[str, str], db_password: str, database: str = "warehouse"
) -> Iterator[psycopg.Connection]:
    """A connection to ``database`` of the cluster `make run` left on disk, started for the reading."""
    with (
        LocalPostgres(
            state_dir=Path(env["PIPELINES_LOCAL_DIR"]) / "postgres",
            port=int(env["db_port"]),
            password=db_password,
        ) as server,
        psycopg.connect(server.conninfo(database)) as conn,
    ):
        yield conn


def warehouse_rows(env: dict[str, str], database: str = "warehouse") -> tuple[list[tuple], list[tuple]]:
    """Reopen the cluster `make run` left on disk and read what it published."""
    with reopened_warehouse(env, DB_PASSWORD, database) as conn:
        attempts = conn.execute(
            "SELECT (created_at AT TIME ZONE 'UTC')::date, count(*),"
            " count(DISTINCT (source_window_start, source_position)),"
            " max(created_at) - min(created_at) < interval '1 hour'"
            " FROM learning_platform.attempts GROUP BY 1"
        ).fetchall()
        stats = conn.execute(
            "SELECT stats_date, loaded, interval_end - interval_start FROM learning_platform.daily_stats"
        ).fetchall()
        return attempts, stats


def test_the_run_command_publishes_the_day_and_stops_its_services(run_environment) -> None:
    first = local_run(run_environment, "--date", DATE)
    assert first.returncode == 0, first.stdout + first.stderr

    counts = printed_counts(first.stdout)
    assert counts["fetched"] == counts["loaded"] + counts["quarantined"] + counts["boundary"]
    assert counts["fetched"] > RECORDS_PER_DAY * 0.9
    for port in ("db_port", "api_port", "smtp_port"):
        assert port_is_closed(run_environment[port]), f"a service was left running on its {port}"
    report_file = (
        Path(run_environment["AIRFLOW_HOME"])
        / "reports"
        / "learning_platform"
        / f"learning_platform_{DATE}.html"
    )
    assert f"report file: {report_file}" in first.stdout
    assert "Records fetched" in report_file.read_text()

    second = local_run(run_environment, "--date", DATE)
    assert second.returncode == 0, second.stdout + second.stderr
    assert printed_counts(second.stdout) == counts, "a rerun must give the same figures"

    [(day, rows, distinct, _)], stats = warehouse_rows(run_environment)
    assert (str(day), rows, distinct) == (DATE, counts["loaded"], counts["loaded"])
    assert [(str(day), loaded) for day, loaded, _ in stats] == [(DATE, counts["loaded"])], (
        "one stats row per date"
    )
    history = (report_file.parent / "learning_platform_history.csv").read_text().splitlines()
    assert len(history) == 2, "one history row per date after a rerun"
    assert history[1].startswith(DATE)
    mail = received(Path(run_environment["PIPELINES_LOCAL_DIR"]) / "outbox")
    assert [message["To"] for message in mail] == ["analysts@e2e.test"] * 2, "one report email per run"
    assert all(DATE in message["Subject"] for message in mail)
    assert all("email: " in run.stdout for run in (first, second))

    # Test mode for the same date: its own scratch warehouse, files and marked mail; the day stays.
    day_before = warehouse_rows(run_environment), report_file.read_text(), history
    trial = local_run(run_environment, "--date", DATE, "--test-mode")
    assert trial.returncode == 0, trial.stdout + trial.stderr

    assert (warehouse_rows(run_environment), report_file.read_text(), history) == day_before
    assert (report_file.parent / "learning_platform_history.csv").read_text().splitlines() == history
    [(day, rows, _, within_an_hour)], [(_, loaded, covered)] = warehouse_rows(
        run_environment, "warehouse_test"
    )
    assert (str(day), rows, loaded, within_an_hour, str(covered)) == (DATE, loaded, rows, True, "1:00:00")
    assert 0 < rows < counts["loaded"] / 10
    trial_file = report_file.parent / "test-mode" / report_file.name
    assert f"report file: {trial_file}" in trial.stdout
    assert "(test mode), not the whole day" in trial_file.read_text()
    *_, trial_mail = received(Path(run_environment["PIPELINES_LOCAL_DIR"]) / "outbox")
    assert trial_mail["Subject"].startswith(f"[TEST MODE] Learning platform report for {DATE}")
    assert_no_secret_in_logs(run_environment)


def assert_no_secret_in_logs(run_environment: dict[str, str]) -> None:
    logs = Path(run_environment["PIPELINES_LOCAL_DIR"]) / "logs"
    airflow_logs = Path(run_environment["AIRFLOW_HOME"]) / "logs"
    texts = [p.read_text(errors="replace") for d in (logs, airflow_logs) for p in d.rglob("*.log")]
    assert texts, "the runs above left logs to scan"
    for text in texts:
        assert API_KEY not in text
        assert DB_PASSWORD not in text


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Path]:
    """A real SMTP server for the DAG's mail; every message lands here as an .eml file."""
    with SmtpSink(tmp_path / "outbox") as sink:
        yield sink


@pytest.fixture
def dag_test(
    run_environment, postgres_server, simulator, warehouse_conninfo, outbox, migrated_airflow_db, tmp_path
):
    """Run ``airflow dags test learning_platform_etl`` against services this test started."""
    database = psycopg.conninfo.conninfo_to_dict(warehouse_conninfo)["dbname"]
    simulator.configure(records_per_day=RECORDS_PER_DAY)
    home = tmp_path / "airflow"
    home.mkdir()
    shutil.copyfile(migrated_airflow_db, home / "airflow.db")
    env = airflow_environment(home, base=run_environment)
    env["AIRFLOW_CONN_LEARNING_PLATFORM_DB"] = warehouse_connection(
        postgres_server.port, database, PIPELINE_PASSWORD, login=PIPELINE_ROLE
    )
    env["AIRFLOW_CONN_SMTP_DEFAULT"] = smtp_connection(outbox.port)
    airflow = str(Path(sys.executable).parent / "airflow")

    def run(
        conf: dict[str, object],
        *,
        day: str = DATE,
        client_key: str = CLIENT_KEY,
        api_url: str | None = None,
        settings: dict[str, str | None] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """``settings``: environment variables to set for this run, or to remove (None)."""
        run_env = dict(env)
        run_env["AIRFLOW_CONN_LEARNING_PLATFORM_API"] = api_connection(
            api_url or simulator.base_url, CLIENT, client_key, retry_attempts=1, connect_timeout=2
        )
        for name, value in (settings or {}).items():
            if value is None:
                run_env.pop(name, None)
            else:
                run_env[name] = value
        return subprocess.run(
            [airflow, "dags", "test", "learning_platform_etl", day, "-c", json.dumps(conf)],
            env=run_env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    return run


def test_the_logical_date_chosen_at_trigger_time_is_the_day_processed(
    dag_test, warehouse_conninfo, outbox
) -> None:
    chosen = "2026-11-18"

    run = dag_test({"language": "ru"}, day=chosen)

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    with psycopg.connect(warehouse_conninfo) as conn:
        days = conn.execute(
            "SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date::text FROM learning_platform.attempts"
        ).fetchall()
        ledger = conn.execute(
            "SELECT (interval_start AT TIME ZONE 'UTC')::date::text,"
            " fetched = loaded + quarantined + boundary_copies "
            "FROM learning_platform.load_batches"
        ).fetchall()
    assert days == [(chosen,)]
    assert ledger == [(chosen, True)]
    [report] = received(outbox.outbox)
    assert report["Subject"] == f"Отчёт обучающей платформы за {chosen}"
    assert report["To"] == "analysts@e2e.test"


def alerts(messages: list[EmailMessage]) -> list[EmailMessage]:
    return [message for message in messages if message["Subject"].startswith("[Airflow alert]")]


def test_a_failed_quality_gate_fails_the_run_after_the_report_and_one_alert_went_out(
    dag_test, outbox, tmp_path
) -> None:
    strict = {"recipients": ["analysts@e2e.test"], "max_rejected_share": 0}

    run = dag_test({}, settings={"AIRFLOW_VAR_LEARNING_PLATFORM_REPORT": json.dumps(strict)})

    output = run.stdout + run.stderr
    assert run.returncode != 0, "the run must end failed"
    assert "the run failed because check_quality failed" in output, "mark_run_failed failed the run"
    report_file = tmp_path / "airflow" / "reports" / "learning_platform" / f"learning_platform_{DATE}.html"
    assert "UNRELIABLE" in report_file.read_text()
    mail = received(outbox.outbox)
    [report] = [message for message in mail if message["To"] == "analysts@e2e.test"]
    assert report["Subject"].endswith("UNRELIABLE figures")
    [alert] = alerts(mail)
    assert alert["Subject"].startswith("[Airflow alert] learning_platform_etl.check_quality failed")
    assert len(mail) == 2


def test_a_failed_publish_fails_the_run_and_without_the_variable_alerts_the_default(
    dag_test, outbox, tmp_path
) -> None:
    not_a_directory = tmp_path / "a-file"
    not_a_directory.write_text("reports cannot go under a file\n")
    unwritable = {"recipients": ["analysts@e2e.test"], "local_dir": str(not_a_directory / "reports")}

    run = dag_test(
        {},
        settings={
            "AIRFLOW_VAR_LEARNING_PLATFORM_REPORT": json.dumps(unwritable),
            "AIRFLOW_VAR_ALERT_RECIPIENTS": None,
            "AIRFLOW__PIPELINES__ALERT_RECIPIENTS": "default-oncall@e2e.test",
        },
    )

    assert run.returncode != 0, "the run must end failed"
    mail = received(outbox.outbox)
    [report] = [message for message in mail if message["To"] == "analysts@e2e.test"]
    assert report["Subject"].endswith("report NOT updated")
    [alert] = alerts(mail)
    assert alert["Subject"].startswith("[Airflow alert] learning_platform_etl.publish_report failed")
    assert alert["To"] == "default-oncall@e2e.test"
    assert "<td>Try</td><td>1 of 1</td>" in alert.get_body(("html",)).get_content(), "not retried"


def test_refused_credentials_fail_the_run_without_task_retries(dag_test, simulator, outbox) -> None:
    run = dag_test({}, client_key="revoked-key")

    assert run.returncode != 0
    assert "refused the credentials of Airflow connection 'learning_platform_api'" in run.stdout + run.stderr
    # One request: no retry inside the try, and no Airflow retry of the task (retries is 1 here).
    assert simulator.stats()["requests"]["total"] == 1
    [alert] = received(outbox.outbox)
    assert alert["Subject"].startswith("[Airflow alert] learning_platform_etl.extract failed")
    assert alert["To"] == "oncall@e2e.test"


def test_a_task_failing_for_good_sends_one_alert_after_its_last_retry(dag_test, outbox) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}"

    run = dag_test({}, api_url=unreachable)

    assert run.returncode != 0
    # Two tries of extract (retries is 1 here), one alert, and no report for a day never loaded.
    [alert] = received(outbox.outbox)
    body = alert.get_body(("html",)).get_content()
    assert alert["Subject"].startswith("[Airflow alert] learning_platform_etl.extract failed")
    assert "<td>Try</td><td>2 of 2</td>" in body
    assert f"<td>Day processed (UTC)</td><td>{DATE}</td>" in body
    assert "cannot reach" in body.lower() or "connect" in body.lower()
    assert "/dags/learning_platform_etl/runs/" in body
    assert "/tasks/extract" in body
