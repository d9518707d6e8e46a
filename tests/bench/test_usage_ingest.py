"""`python -m bench.usage_ingest` on 4 MB end to end: every lane runs, ours is exact, figures add up.

Speed is not checked (that is the benchmark's business, on a machine left alone): what is checked
is that our lanes' totals equal the writer's manifest consumer by consumer, that every line is
accounted for, that the sampled lane says it was extrapolated, that the written files are kept for
the next run, and that its part of docs/PERFORMANCE.md is written without touching the others.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.usage_ingest import (
    DUCKDB,
    DUCKDB_TYPED,
    OUR_READER,
    SECTION_TITLE,
    SEED_WAY,
    WORKERS,
    our_lane_name,
    write_docs,
)
from tests.bench.runs import assert_rewrites_only_its_part, run_quick

FIGURES = ("mb_per_s", "lines_per_s", "wall_s", "drop_s", "cpu_s", "peak_rss_mb", "children_peak_rss_mb")
BATCH_MB = 1  # files of 2 MB: two batches each


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """The JSON of the output's last line and the state folder of one quick run."""
    state_dir = tmp_path_factory.mktemp("bench-usage")
    flags = ("--seed-sample", "500", "--batch-mb", str(BATCH_MB))
    return run_quick("bench.usage_ingest", state_dir, *flags), state_dir


def test_every_lane_runs_and_ours_equals_the_manifest(quick_run) -> None:
    results, _ = quick_run
    [point] = results["sizes"]
    ours = our_lane_name(BATCH_MB)

    assert list(point["lanes"]) == [ours, OUR_READER, DUCKDB, DUCKDB_TYPED, SEED_WAY]
    assert point["files"] == 2
    assert point["lines"] > point["bad_lines"] > 0
    for name, lane in point["lanes"].items():
        for figure in FIGURES:
            assert isinstance(lane[figure], int | float), (name, figure)
            assert lane[figure] >= 0, (name, figure)
        assert lane["mb_per_s"] > 0, name
        assert lane["peak_rss_mb"] > 0, name
    for name in (ours, OUR_READER):
        lane = point["lanes"][name]
        assert lane["consumers_wrong"] == 0, name
        assert (lane["lines"], lane["bytes_read"]) == (point["lines"], point["bytes"]), name
        assert lane["extrapolated"] is False, name
    # DuckDB is told our rules, all but one it cannot obey (a lone CR ends its lines): close, not equal.
    assert point["lanes"][DUCKDB]["consumers_wrong"] < point["lanes"][DUCKDB_TYPED]["consumers_wrong"]


def test_ours_commits_every_line_in_batches_by_two_processes(quick_run) -> None:
    results, _ = quick_run
    [point] = results["sizes"]
    details = point["lanes"][our_lane_name(BATCH_MB)]["details"]

    assert details["lines_quarantined"] == point["bad_lines"]
    assert details["ranges"] == 2
    assert details["batches"] >= 2 * details["ranges"]
    assert details["stale_batches"] == 0
    assert len(details["range_s"]) == details["ranges"]
    assert len(details["processes_peak_rss_mb"]) == WORKERS


def test_the_seed_way_is_a_labelled_extrapolation(quick_run) -> None:
    results, _ = quick_run
    [point] = results["sizes"]
    seed = point["lanes"][SEED_WAY]

    assert seed["extrapolated"] is True
    assert seed["lines"] == 500 < point["lines"]
    assert "500 lines" in seed["sample"]
    assert seed["consumers_wrong"] is None


def test_the_targets_name_what_was_not_measured(quick_run) -> None:
    results, _ = quick_run

    by_target = {target["target"]: target for target in results["targets"]}
    assert (
        by_target[f"{our_lane_name(BATCH_MB)}: totals = manifest (exactly once), every size"]["met"] is True
    )
    for target in results["targets"]:
        # One size: how time and memory grow with it cannot be told.
        if target["target"].startswith(("peak RSS flat", "time linear")):
            assert (target["met"], target["measured"]) == (None, "not measured")
        else:
            assert isinstance(target["met"], bool), target


def test_the_files_are_kept_for_the_next_run_and_not_left_archived(quick_run) -> None:
    results, state_dir = quick_run
    [folder] = state_dir.glob("files-*")

    assert len(list((folder / "incoming").glob("*.usage"))) == 2
    assert not any(path.is_file() for path in (folder / "archive").rglob("*"))
    assert results["sizes"][0]["write_s"] is not None  # written by this run, reused by the next


def test_its_part_of_the_performance_document_is_rewritten_and_the_rest_kept(quick_run, tmp_path) -> None:
    results, _ = quick_run
    others = (
        "# Performance of the learning platform pipeline\n\nfigures\n\n"
        "# Performance of csv_folder_import\n\nmore\n"
    )

    assert_rewrites_only_its_part(write_docs, results, SECTION_TITLE, tmp_path, others)
