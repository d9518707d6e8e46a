"""`make bench`'s measurement of Airflow's own per-task start-up, on a tiny day.

The bench runs as a user runs it, with the measurement switched on over ``--quick``: it starts a
local Airflow, runs the flagship DAG in it, reports every task's timings and stops it all. A
failure to measure is reported, not raised, so that the bench keeps the figures it has.
"""

from __future__ import annotations

import json
import subprocess
from datetime import date
from pathlib import Path

import pytest

from bench import airflow_overhead
from devservices.postgres import LocalPostgres, free_port
from devservices.simulator.process import SimulatorProcess
from tests.bench.runs import run_bench
from tests.include.learning_platform.stages import DAG_TASKS

pytestmark = pytest.mark.timeout(900)

TIMINGS = ("ready_to_queued_s", "queued_to_start_s", "start_to_end_s", "total_s")


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    state_dir = tmp_path_factory.mktemp("bench_airflow")
    return run_bench(state_dir, "--airflow-startup", timeout_s=600), state_dir


def test_every_task_of_each_successful_run_has_positive_timings(bench_run) -> None:
    _, state_dir = bench_run
    figures = json.loads((state_dir / "results.json").read_text())["airflow_task_overhead"]

    assert figures["measured"], figures.get("why")
    assert len(figures["runs"]) == airflow_overhead.RUNS
    for run in figures["runs"]:
        assert run["state"] == "success"
        assert list(run["tasks"]) == list(DAG_TASKS)  # in the order they ran: the DAG is a chain
        for task_id, timings in run["tasks"].items():
            for name in TIMINGS:
                assert timings[name] > 0, f"{run['date']} {task_id} {name}"
        assert run["wall_s"] >= sum(timings["total_s"] for timings in run["tasks"].values())
    assert figures["per_task_s"] > 0


def test_the_figures_are_printed_and_in_the_summary(bench_run) -> None:
    completed, _ = bench_run
    summary = json.loads(completed.stdout.strip().splitlines()[-1])

    assert summary["airflow_overhead_per_task_s"] > 0
    assert "Airflow's own per-task start-up: the DAG in a local Airflow" in completed.stdout
    for task_id in DAG_TASKS:
        assert f"\n{task_id} " in completed.stdout
    assert "This start-up does not grow with the day" in completed.stdout


def test_no_airflow_component_is_left_running(bench_run) -> None:
    _, state_dir = bench_run
    home = f"AIRFLOW_HOME={state_dir / 'airflow'}".encode()

    # Every component, and every process they started, carries the Airflow home it served.
    left = [path.parent.name for path in Path("/proc").glob("[0-9]*/environ") if home in _environment(path)]
    assert not left, f"still running: {left}"
    assert not LocalPostgres(state_dir=state_dir / "postgres", port=free_port()).data_dir.exists()


def test_a_failure_is_reported_as_not_measured(tmp_path: Path) -> None:
    """PostgreSQL is down: the figures say why they are missing, and nothing is raised."""
    server = LocalPostgres(state_dir=tmp_path / "postgres", port=free_port())
    simulator = SimulatorProcess(
        host="127.0.0.1",
        port=free_port(),
        client="bench",
        client_key="key",
        records_per_day=1000,
        log_file=tmp_path / "simulator.log",
    )

    figures = airflow_overhead.measure(server, simulator, tmp_path, date(2026, 3, 2))

    assert figures["measured"] is False
    assert figures["why"].startswith("OperationalError: ")
    assert not (tmp_path / "airflow").exists()


def _environment(path: Path) -> list[bytes]:
    try:
        return path.read_bytes().split(b"\0")
    except OSError:  # gone meanwhile, or not ours to read
        return []
