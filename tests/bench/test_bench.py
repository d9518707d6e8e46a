"""`make bench` end to end on a tiny day: one smoke run of the benchmark as a user runs it.

It checks what the benchmark reports and that its figures add up (every record fetched is
judged, every valid one loaded, every way of loading moves the same rows), not how fast
anything was: speed is `make bench`'s business, on a machine left alone.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from devservices.postgres import LocalPostgres, free_port
from tests.bench.runs import run_bench

RECORDS = 2000
SUMMARY_FIGURES = (
    "load_rows_per_s",
    "load_vs_psql_copy",
    "load_vs_row_by_row",
    "end_to_end_s",
    "end_to_end_vs_psql_copy",
    "psql_copy_s",
    "simulator_alone_s",
    "peak_rss_mb",
)
STAGE_FIGURES = ("wall_s", "rows_per_s", "peak_rss_mb")
STAGES = ("extract", "validate", "load", "compute_stats")
BASELINES = ("psql \\copy", "row-by-row INSERT + COMMIT", "pandas DataFrame.to_sql")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict, Path]:
    """The summary (the output's last line), results.json, and the state folder of one run."""
    state_dir = tmp_path_factory.mktemp("bench")
    completed: subprocess.CompletedProcess[str] = run_bench(state_dir, timeout_s=240)
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    return summary, json.loads((state_dir / "results.json").read_text()), state_dir


def test_the_summary_line_has_every_figure_of_every_stage(quick_run) -> None:
    summary, results, _ = quick_run

    assert summary["records"] == RECORDS
    for key in SUMMARY_FIGURES:
        assert isinstance(summary[key], int | float), key
        assert summary[key] == results[key], f"{key}: the summary line and results.json disagree"
    assert summary["airflow_overhead_per_task_s"] is None, "not measured by a quick run"
    assert list(summary["stages"]) == list(STAGES)
    for name, stage in summary["stages"].items():
        assert set(stage) == set(STAGE_FIGURES), name
        assert all(isinstance(value, int | float) for value in stage.values()), name
    assert results["scaling"] == []
    assert results["airflow_task_overhead"]["measured"] is False
    assert results["retention"]["measured"] is False


def test_every_record_is_accounted_for_at_every_stage_and_in_every_way_of_loading(quick_run) -> None:
    summary, results, _ = quick_run
    stages = results["stages"]
    fetched = stages["extract"]["records"]
    judged = stages["validate"]["detail"]

    # Windows include their end, so the day may yield a few records beyond its size: the copies
    # of records stamped exactly at a window's end, which the next window owns.
    assert fetched >= RECORDS
    assert (
        stages["validate"]["records"]
        == fetched
        == judged["valid"] + judged["rejected"] + judged["boundary_copies"]
    )
    assert stages["load"]["records"] == judged["valid"] == summary["valid_rows"]
    assert stages["load"]["detail"]["quarantined"] == judged["rejected"]
    assert stages["compute_stats"]["records"] == judged["valid"]
    assert {name: baseline["rows"] for name, baseline in results["baselines"].items()} == dict.fromkeys(
        BASELINES, judged["valid"]
    )


def test_the_run_leaves_no_cluster_and_no_data_file(quick_run) -> None:
    _, _, state_dir = quick_run

    assert not (state_dir / "attempts.csv").exists()
    # As root the cluster's data may live under /var/tmp: LocalPostgres knows where.
    assert not LocalPostgres(state_dir=state_dir / "postgres", port=free_port()).data_dir.exists()
