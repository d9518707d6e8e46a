"""The README's run command, end to end: local services, ``airflow dags test``, the report.

These tests run ``python -m devservices.local_run`` (what ``make run`` calls) in a separate
process with its own Airflow home, state folder and ports, so they exercise exactly what a
newcomer runs, including start-up and shutdown of the local PostgreSQL and the simulator.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from devservices.environment import PROJECT_ROOT, airflow_environment
from devservices.postgres import LocalPostgres, free_port
from tests.conftest import CLIENT, CLIENT_KEY

pytestmark = pytest.mark.timeout(600)

DATE = "2026-11-20"
RECORDS_PER_DAY = 3000
DB_PASSWORD = "e2e-password"
API_KEY = "e2e-key"


def warehouse_connection(port: int, database: str, password: str) -> str:
    """An ``AIRFLOW_CONN_*`` value (JSON form) for a local PostgreSQL database."""
    fields = {
        "host": "127.0.0.1",
        "port": port,
        "schema": database,
        "login": "postgres",
        "password": password,
    }
    return json.dumps({"conn_type": "postgres", **fields})


def api_connection(base_url: str, client: str, client_key: str) -> str:
    """An ``AIRFLOW_CONN_*`` value (JSON form) for the statistics API."""
    return json.dumps({"conn_type": "http", "host": base_url, "login": client, "password": client_key})


@pytest.fixture(scope="module")
def run_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    state = tmp_path_factory.mktemp("local_run")
    db_port, api_port = free_port(), free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "START_LOCAL", "SIMULATOR_"))
    }
    env.update(
        {
            "PIPELINES_LOCAL_DIR": str(state),
            "AIRFLOW_HOME": str(state / "airflow"),
            "AIRFLOW_CONN_LEARNING_PLATFORM_DB": warehouse_connection(db_port, "warehouse", DB_PASSWORD),
            "AIRFLOW_CONN_LEARNING_PLATFORM_API": api_connection(
                f"http://127.0.0.1:{api_port}", "e2e-client", API_KEY
            ),
            "SIMULATOR_RECORDS_PER_DAY": str(RECORDS_PER_DAY),
            "AIRFLOW__PIPELINES__TASK_RETRIES": "1",
            "AIRFLOW__PIPELINES__RETRY_DELAY_SECONDS": "1",
        }
    )
    env["db_port"], env["api_port"] = str(db_port), str(api_port)
    yield env
    # `make run` keeps its cluster between runs on purpose; a test's cluster must go.
    LocalPostgres(state_dir=state / "postgres", port=db_port).destroy()


def local_run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devservices.local_run", *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )


def printed_counts(output: str) -> dict[str, int]:
    return {
        name: int(value.replace(",", ""))
        for name, value in re.findall(r"^(fetched|loaded|quarantined)\s+([\d,]+)", output, re.MULTILINE)
    }


def port_is_closed(port: str) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", int(port))) != 0


def warehouse_rows(env: dict[str, str]) -> list[tuple]:
    """Reopen the cluster `make run` left on disk and read what it published."""
    with (
        LocalPostgres(
            state_dir=Path(env["PIPELINES_LOCAL_DIR"]) / "postgres",
            port=int(env["db_port"]),
            password=DB_PASSWORD,
        ) as server,
        psycopg.connect(server.conninfo("warehouse")) as conn,
    ):
        return conn.execute(
            "SELECT created_at::date, count(*), count(DISTINCT (source_window_start, source_position)) "
            "FROM learning_platform.attempts GROUP BY 1"
        ).fetchall()


def test_the_run_command_publishes_the_day_and_stops_its_services(run_environment) -> None:
    first = local_run(run_environment, "--date", DATE)
    assert first.returncode == 0, first.stdout + first.stderr

    counts = printed_counts(first.stdout)
    assert counts["fetched"] == counts["loaded"] + counts["quarantined"]
    assert counts["fetched"] > RECORDS_PER_DAY * 0.9
    assert port_is_closed(run_environment["db_port"]), "PostgreSQL left running"
    assert port_is_closed(run_environment["api_port"]), "simulator left running"

    second = local_run(run_environment, "--date", DATE)
    assert second.returncode == 0, second.stdout + second.stderr
    assert printed_counts(second.stdout) == counts, "a rerun must give the same figures"

    [(day, rows, distinct)] = warehouse_rows(run_environment)
    assert (str(day), rows, distinct) == (DATE, counts["loaded"], counts["loaded"])


@pytest.fixture
def dag_test(run_environment, postgres_server, simulator, warehouse_conninfo, tmp_path):
    """Run ``airflow dags test learning_platform_etl`` against services this test started."""
    database = psycopg.conninfo.conninfo_to_dict(warehouse_conninfo)["dbname"]
    simulator.configure(records_per_day=RECORDS_PER_DAY)
    env = airflow_environment(tmp_path / "airflow", base=run_environment)
    env["AIRFLOW_CONN_LEARNING_PLATFORM_DB"] = warehouse_connection(
        postgres_server.port, database, "test-password"
    )
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, check=True, timeout=300)

    def run(conf: dict[str, object], *, client_key: str = CLIENT_KEY) -> subprocess.CompletedProcess[str]:
        env["AIRFLOW_CONN_LEARNING_PLATFORM_API"] = api_connection(simulator.base_url, CLIENT, client_key)
        return subprocess.run(
            [airflow, "dags", "test", "learning_platform_etl", DATE, "-c", json.dumps(conf)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    return run


def test_a_date_chosen_at_trigger_time_overrides_the_logical_date(dag_test, warehouse_conninfo) -> None:
    chosen = "2026-11-18"

    run = dag_test({"date": chosen})

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    with psycopg.connect(warehouse_conninfo) as conn:
        days = conn.execute(
            "SELECT DISTINCT created_at::date::text FROM learning_platform.attempts"
        ).fetchall()
        ledger = conn.execute(
            "SELECT interval_start::date::text, fetched = loaded + quarantined "
            "FROM learning_platform.load_batches"
        ).fetchall()
    assert days == [(chosen,)]
    assert ledger == [(chosen, True)]


def test_refused_credentials_fail_the_run_without_task_retries(dag_test, simulator) -> None:
    run = dag_test({"date": DATE}, client_key="revoked-key")

    assert run.returncode != 0
    assert "refused the credentials of Airflow connection 'learning_platform_api'" in run.stdout + run.stderr
    # One request: no retry inside the try, and no Airflow retry of the task (retries is 1 here).
    assert simulator.stats()["requests"]["total"] == 1


def test_secrets_stay_out_of_the_logs(run_environment) -> None:
    logs = Path(run_environment["PIPELINES_LOCAL_DIR"]) / "logs"
    airflow_logs = Path(run_environment["AIRFLOW_HOME"]) / "logs"
    texts = [p.read_text(errors="replace") for d in (logs, airflow_logs) for p in d.rglob("*.log")]
    assert texts, "the runs above left logs to scan"
    for text in texts:
        assert API_KEY not in text
        assert DB_PASSWORD not in text
