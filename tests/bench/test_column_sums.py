"""`python -m bench.column_sums --quick`: every lane runs, from disk and S3, each exact or with its drift.

Speed is not checked (that is the benchmark's business, on a machine left alone).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bench.column_sums import ENGINES, GROUPS, QUICK_ROWS, SECTION_TITLE, write_docs
from tests.bench.runs import assert_rewrites_only_its_part, run_quick


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    state_dir = tmp_path_factory.mktemp("column_sums")
    return run_quick("bench.column_sums", state_dir), state_dir


def test_every_lane_runs_from_disk_and_from_s3(quick_run) -> None:
    results, _ = quick_run
    assert {group: set(results[group][0]["lanes"]) for group in GROUPS} == {
        "disk": {"ours", "ours_processes", "duckdb", "polars", "pyarrow", "pandas"},
        "s3": {"ours", "polars", "pyarrow", "pandas"},
    }
    for group in GROUPS:
        (point,) = results[group]
        assert point["rows"] == QUICK_ROWS
        for lane in point["lanes"].values():
            assert lane["wall_s"] > 0
            assert lane["peak_rss_mb"] > 0


def test_every_lane_is_exact_or_reports_its_drift(quick_run) -> None:
    results, _ = quick_run
    for group in GROUPS:
        for lane in results[group][0]["lanes"].values():
            assert lane["counts_right"], (group, lane["name"])
            assert lane["exact"] or Decimal(lane["drift"]) > 0, (group, lane["name"])
    assert all(results["disk"][0]["lanes"][engine]["exact"] for engine in ENGINES)
    assert all(results["s3"][0]["lanes"][engine]["exact"] for engine in ("polars", "pyarrow"))
    assert not results["disk"][0]["lanes"]["pandas"]["exact"], "float sums drift: the table shows by how much"


def test_ours_equals_the_generator_from_disk_and_from_s3(quick_run) -> None:
    results, _ = quick_run
    assert results["disk"][0]["lanes"]["ours"]["exact"]
    assert results["disk"][0]["lanes"]["ours_processes"]["exact"]
    assert results["s3"][0]["lanes"]["ours"]["exact"]
    assert {target["target"] for target in results["targets"]} >= {
        "peak RSS < 300 MB (ours, disk and S3)",
        "ours: sums and counts equal the generator's (disk and S3)",
    }


def test_the_file_is_kept_for_the_next_run(quick_run) -> None:
    _, state_dir = quick_run
    assert {path.name for path in state_dir.glob("columns-*")} == {
        "columns-20000x30.csv",
        "columns-20000x30.json",
    }


def test_its_part_of_the_performance_document_is_rewritten_and_the_rest_kept(
    quick_run, tmp_path: Path
) -> None:
    results, _ = quick_run
    others = "# Performance of another pipeline\n\nIts figures.\n"
    assert_rewrites_only_its_part(write_docs, results, SECTION_TITLE, tmp_path, others)
