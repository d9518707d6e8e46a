"""``make run DAG=csv_column_sums``, end to end: a real Airflow, its REST API plugin, S3 and disk.

``python -m devservices.local_run --dag csv_column_sums`` runs in a separate process with its own
state folder and ports: its local PostgreSQL, a local S3 server (moto), and a local Airflow (the
api-server with the ``/column-sums`` plugin, scheduler, dag-processor, LocalExecutor) that it
then asks for a small sample's sums over HTTP, as a client would. The test reads what the run
left behind, independently of what it printed: the results table of the warehouse against the
generator's own account of the sample, and Airflow's task instances (one per request, each in a
process of its own).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from devservices.column_sums_demo import BUCKET, sample
from devservices.csv_columns import Written
from devservices.local_runs.csv_column_sums import METADATA_DATABASE, MISSING
from tests.test_end_to_end import local_run, port_is_closed, reopened_warehouse, warehouse_run_environment

pytestmark = pytest.mark.timeout(300)

DB_PASSWORD = "sums-e2e-password"
ROWS = 5_000
COLUMNS = 25


@dataclass(frozen=True)
class Run:
    completed: subprocess.CompletedProcess[str]
    sample: Written
    # location -> (outcome, result) of the warehouse's results table.
    results: dict[str, tuple[str, dict[str, Any]]]
    # (task_id, state, pid) of Airflow's task instances of csv_column_sums.
    task_instances: list[tuple[str, str, int]]


@pytest.fixture(scope="module")
def run_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    state = tmp_path_factory.mktemp("sums_local_run")
    with warehouse_run_environment(state, db_password=DB_PASSWORD, alert_recipient="oncall@sums.test") as env:
        yield env


@pytest.fixture(scope="module")
def run(run_environment: dict[str, str]) -> Run:
    completed = local_run(
        run_environment,
        "--dag",
        "csv_column_sums",
        "--rows",
        str(ROWS),
        "--columns",
        str(COLUMNS),
        timeout_s=240,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    root = Path(run_environment["PIPELINES_LOCAL_DIR"]) / "column_sums" / "root"
    [csv_file] = root.glob("*.csv")
    # The generator's account, kept beside the file when it was written (not generated again).
    written = sample(ROWS, COLUMNS, root=root)
    assert Path(written.path) == csv_file
    with reopened_warehouse(run_environment, DB_PASSWORD) as conn:
        results = {
            location: (outcome, result)
            for location, outcome, result in conn.execute(
                "SELECT location, outcome, result FROM column_sums.results"
            )
        }
    with reopened_warehouse(run_environment, DB_PASSWORD, METADATA_DATABASE) as conn:
        task_instances = conn.execute(
            "SELECT task_id, state, pid FROM task_instance WHERE dag_id = 'csv_column_sums'"
        ).fetchall()
    return Run(completed, written, results, task_instances)


def test_the_file_from_disk_and_from_s3_are_summed_exactly_as_generated(run: Run) -> None:
    name = Path(run.sample.path).name
    assert (run.sample.rows, run.sample.columns) == (ROWS, COLUMNS)
    expected = [
        (column.index, column.name, Decimal(column.sum), column.numeric, column.blank, column.non_numeric)
        for column in run.sample.expected
    ]
    assert len(expected) == 2, "precondition: 25 columns have a 10th and a 20th"

    for location in (name, f"s3://{BUCKET}/{name}"):
        outcome, result = run.results[location]
        assert outcome == "sums"
        assert result["rows"] == ROWS
        assert [
            (
                column["index"],
                column["name"],
                Decimal(column["sum"]),
                column["numeric_cells"],
                column["blank_cells"],
                column["non_numeric_cells"],
            )
            for column in result["columns"]
        ] == expected


def test_the_missing_file_is_answered_not_found_and_each_request_ran_in_its_own_task(run: Run) -> None:
    outcome, result = run.results[MISSING]
    assert (outcome, result["code"]) == ("problem", "not_found")
    assert len(run.results) == 3
    assert [state for _, state, _ in run.task_instances] == ["success"] * 3
    assert len({pid for _, _, pid in run.task_instances}) == 3


def test_the_report_prints_each_table_the_checks_the_curl_session_and_no_secret(
    run: Run, run_environment: dict[str, str]
) -> None:
    out = run.completed.stdout
    assert out.count("check      ") == 3
    assert "WRONG" not in out
    assert re.search(r"^in progress \d+ \(queued \d+, running \d+\)", out, re.MULTILINE)
    for column in run.sample.expected:
        assert re.search(rf"^  {column.index} {column.name} +{re.escape(column.sum)} ", out, re.MULTILINE)
    assert "failed, not_found: " in out
    assert re.search(r"^  TOKEN=\$\(curl -s -X POST http://127\.0\.0\.1:\d+/auth/token ", out, re.MULTILINE)
    assert re.search(
        r"^API documentation \(OpenAPI\): http://127\.0\.0\.1:\d+/column-sums/docs$", out, re.MULTILINE
    )
    assert "Bearer ey" not in out + run.completed.stderr
    assert DB_PASSWORD not in out + run.completed.stderr


def test_the_run_stopped_everything_it_started(run: Run, run_environment: dict[str, str]) -> None:
    ports = {
        int(port)
        for port in re.findall(r"http://127\.0\.0\.1:(\d+)", run.completed.stdout + run.completed.stderr)
    }
    assert ports, "precondition: the run printed the addresses it served"
    assert [port for port in ports if not port_is_closed(str(port))] == []
    assert port_is_closed(run_environment["db_port"])


@pytest.mark.parametrize(("option", "message"), [("--rows=0", "--rows"), ("--columns=9", "--columns")])
def test_bad_options_are_refused_before_anything_starts(
    tmp_path: Path, run_environment: dict[str, str], option: str, message: str
) -> None:
    env = {**run_environment, "PIPELINES_LOCAL_DIR": str(tmp_path / "state")}

    refused = local_run(env, "--dag", "csv_column_sums", option, timeout_s=60)

    assert refused.returncode == 2
    assert message in refused.stderr
    assert not (tmp_path / "state").exists()
