"""`python -m bench.column_sums --quick`: every lane runs, ours and DuckDB are exact, the targets are judged.

Speed is not checked (that is the benchmark's business, on a machine left alone).
"""

from __future__ import annotations

from pathlib import Path

from tests.bench.runs import run_quick


def test_every_lane_runs_and_ours_equals_the_generator(tmp_path: Path) -> None:
    results = run_quick("bench.column_sums", tmp_path)
    (point,) = results["points"]
    lanes = point["lanes"]
    assert set(lanes) == {"ours", "ours_processes", "duckdb", "pandas"}
    assert lanes["ours"]["exact"]
    assert lanes["ours_processes"]["exact"]
    assert lanes["duckdb"]["exact"]
    assert lanes["pandas"]["counts_right"]
    for lane in lanes.values():
        assert lane["wall_s"] > 0
        assert lane["peak_rss_mb"] > 0
    assert {target["target"] for target in results["targets"]} >= {
        "peak RSS < 300 MB",
        "ours: sums and counts equal the generator's",
    }
    assert list(tmp_path.glob("columns-20000x30.*")), "the written file is kept for the next run"
