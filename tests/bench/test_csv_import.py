"""`python -m bench.csv_import --quick` end to end: every lane moves every row, the figures add up.

Speed is not checked (that is the benchmark's business, on a machine left alone): what is checked
is that each lane loaded the rows that went in, that a sampled lane says it was extrapolated,
that the run cleans up after itself, and that its part of docs/PERFORMANCE.md is written
without touching the other pipelines' parts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.csv_import import (
    COPY_2,
    COPY_2_APART,
    DATABASE_APART,
    IMPORT_WORKERS,
    LANES,
    OUR_READER,
    OURS,
    OURS_APART,
    SECTION_TITLE,
    SEED_WAY,
    _apart_sentence,
    write_docs,
)
from devservices.postgres import LocalPostgres, free_port
from tests.bench.runs import assert_rewrites_only_its_part, run_quick

FIGURES = ("mb_per_s", "rows_per_s", "wall_s", "drop_s", "cpu_s", "peak_rss_mb", "children_peak_rss_mb")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """The JSON of the output's last line and the state folder of one quick run."""
    state_dir = tmp_path_factory.mktemp("bench-csv")
    return run_quick("bench.csv_import", state_dir), state_dir


def test_every_lane_loads_every_row_that_went_in(quick_run) -> None:
    results, _ = quick_run
    [point] = results["sizes"]

    assert point["rows"] > 0
    assert 0.9 * point["size"] <= point["bytes"] <= 1.1 * point["size"]
    assert list(point["lanes"]) == list(LANES)
    for name, lane in point["lanes"].items():
        assert lane["measured"], f"{name}: {lane['skipped']}"
        assert lane["rows_out"] == lane["rows_in"] > 0, name
        for figure in FIGURES:
            assert isinstance(lane[figure], int | float), (name, figure)
            assert lane[figure] >= 0, (name, figure)
        assert lane["peak_rss_mb"] > 0, name
        if name == SEED_WAY:
            assert lane["extrapolated"] is True
            assert lane["sample"]
            assert lane["rows_in"] < point["rows"]
        else:
            assert lane["extrapolated"] is False, name
            assert lane["rows_in"] == point["rows"], name
            assert lane["bytes_read"] == point["bytes"], name


def test_psql_runs_as_a_child_of_its_lane_and_its_memory_is_counted_there(quick_run) -> None:
    results, _ = quick_run
    [point] = results["sizes"]

    for name in ("psql \\copy, 1 at a time", "psql \\copy, 2 at a time"):
        assert point["lanes"][name]["children_peak_rss_mb"] > 0, name


def test_our_chunks_are_imported_by_two_processes_whose_peak_rss_is_reported(quick_run) -> None:
    results, _ = quick_run
    [point] = results["sizes"]

    for name in (OURS, OUR_READER, OURS_APART):
        lane = point["lanes"][name]
        workers = lane["workers"]
        # Every file is one chunk at least (the quick drop's files are far below a chunk's size).
        assert workers["chunks"] >= point["files"], name
        assert len(workers["chunk_s"]) == workers["chunks"], name
        assert len(workers["processes_peak_rss_mb"]) == IMPORT_WORKERS, name
        # The processes are the lane's children: the largest child is the largest of them (Linux's
        # ru_maxrss at exit and VmHWM before it differ by a few pages).
        largest = max(workers["processes_peak_rss_mb"])
        assert largest > 0, name
        assert lane["children_peak_rss_mb"] == pytest.approx(largest, rel=0.05), name


def test_the_database_apart_lanes_ran_the_server_and_the_lane_on_cpus_of_their_own(quick_run) -> None:
    results, _ = quick_run
    [point] = results["sizes"]

    for name, lane in point["lanes"].items():
        if name not in DATABASE_APART:
            assert lane["cpus"] is None, name
            continue
        cpus = lane["cpus"]
        assert len(cpus["database"]) == 1, name
        assert cpus["lane"], name
        assert not set(cpus["database"]) & set(cpus["lane"]), name


def test_the_targets_name_what_was_not_measured(quick_run) -> None:
    results, _ = quick_run

    assert results["targets"]
    for target in results["targets"]:
        assert set(target) == {"target", "measured", "met"}
        # One size: how time and memory grow with the drop cannot be told.
        if target["target"].startswith(("peak RSS flat", "time linear")):
            assert (target["met"], target["measured"]) == (None, "not measured")
        else:
            assert isinstance(target["met"], bool), target


def test_the_run_leaves_no_drop_and_no_cluster(quick_run) -> None:
    _, state_dir = quick_run

    assert not list(state_dir.glob("drop-*"))
    assert not LocalPostgres(state_dir=state_dir / "postgres", port=free_port()).data_dir.exists()


def test_its_part_of_the_performance_document_is_rewritten_and_the_rest_kept(quick_run, tmp_path) -> None:
    results, _ = quick_run
    flagship = "# Performance of the learning platform pipeline\n\n## Stages\n\nfigures\n"

    assert_rewrites_only_its_part(write_docs, results, SECTION_TITLE, tmp_path, flagship)


@pytest.mark.parametrize(
    ("ours_apart", "explained"),
    [((40.0, 45.0, 50.0), True), ((30.0, 35.0, 40.0), False)],
    ids=["apart faster", "apart no faster"],
)
def test_the_database_apart_paragraph_explains_only_what_its_rounds_bear_out(ours_apart, explained) -> None:
    def lane(*mb_per_s: float) -> dict:
        return {"measured": True, "repeats_mb_per_s": list(mb_per_s)}

    point = {
        "lanes": {
            OURS: lane(35.0, 40.0, 45.0),
            COPY_2: lane(50.0, 50.0, 50.0),
            OURS_APART: lane(*ours_apart),
            COPY_2_APART: lane(50.0, 50.0, 50.0),
        }
    }

    paragraph = " ".join(_apart_sentence(point))

    assert "against 0.80x sharing both" in paragraph
    assert ("the check's CPU no longer takes the server's" in paragraph) is explained
    assert ("no better in this run" in paragraph) is not explained
