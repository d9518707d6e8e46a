"""`make bench` end to end on a tiny day: it runs, cleans up, and its last line is the JSON summary."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from devservices.postgres import LocalPostgres, free_port
from tests.bench.runs import run_bench

REQUIRED_KEYS = (
    "records",
    "load_rows_per_s",
    "load_vs_psql_copy",
    "load_vs_row_by_row",
    "end_to_end_s",
    "end_to_end_vs_psql_copy",
    "peak_rss_mb",
)
STAGES = ("extract", "validate", "load", "compute_stats")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    state_dir = tmp_path_factory.mktemp("bench")
    return run_bench(state_dir, timeout_s=120), state_dir


def test_last_line_is_the_json_summary_with_positive_figures(quick_run) -> None:
    completed, _ = quick_run
    summary = json.loads(completed.stdout.strip().splitlines()[-1])

    assert set(REQUIRED_KEYS) <= summary.keys()
    assert summary["records"] == 2000
    for key in REQUIRED_KEYS:
        assert summary[key] > 0, key
    assert 0 < summary["valid_rows"] <= 2000
    # extract's floor, measured apart: the simulator serving the same day, its answer unread
    assert summary["simulator_alone_s"] > 0
    assert set(summary["stages"]) == set(STAGES)
    for stage in summary["stages"].values():
        assert stage["wall_s"] > 0
        assert stage["peak_rss_mb"] > 0


def test_table_reports_every_stage_and_way_of_loading(quick_run) -> None:
    completed, _ = quick_run

    for stage in STAGES:
        assert f"\n{stage} " in completed.stdout
    assert "psql \\copy" in completed.stdout
    assert "The simulator alone" in completed.stdout
    assert "extrapolated from a sample of 200" in completed.stdout
    assert "pandas DataFrame.to_sql" in completed.stdout
    # Airflow's own per-task start-up is measured apart, and not by a quick run.
    assert "is measured apart, below" in completed.stdout
    assert "Airflow's own per-task start-up: not measured: off" in completed.stdout
    assert "Landing retention: not measured: off" in completed.stdout


def test_results_file_matches_the_summary_and_the_cluster_is_gone(quick_run) -> None:
    completed, state_dir = quick_run
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    results = json.loads((state_dir / "results.json").read_text())

    assert {key: results[key] for key in REQUIRED_KEYS} == {key: summary[key] for key in REQUIRED_KEYS}
    assert results["scaling"] == []
    assert results["airflow_task_overhead"]["measured"] is False
    assert results["retention"]["measured"] is False
    assert summary["airflow_overhead_per_task_s"] is None
    assert not (state_dir / "attempts.csv").exists()
    # As root the cluster's data may live under /var/tmp: LocalPostgres knows where.
    assert not LocalPostgres(state_dir=state_dir / "postgres", port=free_port()).data_dir.exists()
