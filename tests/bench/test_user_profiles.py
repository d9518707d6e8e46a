"""`python -m bench.user_profiles --quick` on a few hundred profiles: both designs relay the same
people, every in-range one delivered once, and the figures add up.

Speed is not checked (that is the benchmark's business, on a machine left alone): what is checked
is that both lanes delivered exactly the profiles in range (the benchmark itself fails otherwise,
and ours also passed its own summary), that every stage reports its figures, that the paced run
timed every tick and every delivery, and that its part of docs/PERFORMANCE.md is written without
touching the others.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.user_profiles import OURS, OURS_ALONE, SECTION_TITLE, SEED, STAGES, write_docs
from tests.bench.runs import run_quick

COUNT, PACED_COUNT, PACED_INTERVAL = 200, 6, 0.2
STAGE_FIGURES = ("profiles", "wall_s", "profiles_per_s", "cpu_s", "peak_rss_mb")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The JSON of the output's last line of one quick run."""
    flags = ("--count", str(COUNT), "--lag-count", str(PACED_COUNT), "--lag-interval", str(PACED_INTERVAL))
    return run_quick("bench.user_profiles", tmp_path_factory.mktemp("bench-profiles"), *flags)


def test_both_designs_deliver_the_same_profiles_in_range_once(results: dict) -> None:
    ours, seed = results["fast"][OURS], results["fast"][SEED]

    assert (ours["count"], seed["count"]) == (COUNT, COUNT)
    # About one in nine is 30-40; none or all would mean the ages were not judged.
    assert 0 < ours["delivered"] == seed["delivered"] < COUNT
    assert ours["stages"]["send"]["profiles"] == ours["delivered"]
    assert seed["stages"]["send"]["profiles"] == seed["delivered"]


def test_every_stage_of_both_designs_reports_its_figures(results: dict) -> None:
    assert list(results["fast"]) == [OURS, SEED, OURS_ALONE]
    for lane in (OURS, SEED):
        run = results["fast"][lane]
        assert list(run["stages"]) == list(STAGES), lane
        for name, stage in run["stages"].items():
            for figure in STAGE_FIGURES:
                assert isinstance(stage[figure], int | float), (lane, name, figure)
            assert stage["peak_rss_mb"] > 0, (lane, name)
            assert 0 < stage["wall_s"] <= run["total_s"], (lane, name)
        assert run["stages"]["generate"]["profiles"] == run["stages"]["process"]["profiles"] == COUNT
        assert run["profiles_per_s"] > 0
        assert run["repeats_profiles_per_s"] == [run["profiles_per_s"]]  # --quick: one run per lane
        assert run["last_tick_to_last_delivery_s"] >= 0
        assert run["lag_median_s"] <= run["lag_p95_s"] <= run["lag_max_s"]


def test_our_stages_one_at_a_time_each_handle_the_whole_run(results: dict) -> None:
    alone, together = results["fast"][OURS_ALONE], results["fast"][OURS]

    assert alone["delivered"] == together["delivered"]
    assert [stage["profiles"] for stage in alone["stages"].values()] == [COUNT, COUNT, alone["delivered"]]
    # One after the other: the run's time is the stages' own times added up, and nothing was
    # delivered before generation ended.
    assert alone["total_s"] == pytest.approx(
        sum(stage["wall_s"] for stage in alone["stages"].values()), abs=0.01
    )
    assert alone["delivered_before_last_tick"] == 0
    assert alone["lag_median_s"] is None


def test_the_paced_run_times_every_tick_and_every_delivery(results: dict) -> None:
    assert list(results["paced"]) == [OURS, SEED]
    for lane in (OURS, SEED):
        run = results["paced"][lane]
        assert run["interval_s"] == PACED_INTERVAL
        # Every age is kept: each tick is delivered and timed.
        assert run["delivered"] == PACED_COUNT, lane
        ticks = run["ticks"]
        assert 0 < ticks["interval_min_s"] <= ticks["interval_median_s"] <= ticks["interval_max_s"], lane
        assert 0 <= ticks["within_tolerance"] <= 1
        assert 0 < run["lag_median_s"] <= run["lag_max_s"], lane


def test_every_target_is_judged(results: dict) -> None:
    targets = results["targets"]

    assert len(targets) == 4
    assert all(isinstance(target["met"], bool) for target in targets), targets


def test_its_part_of_the_performance_document_is_rewritten_and_the_rest_kept(
    results: dict, tmp_path: Path
) -> None:
    document = tmp_path / "PERFORMANCE.md"
    others = (
        "# Performance of the learning platform pipeline\n\nfigures\n\n"
        "# Performance of usage_files_ingest\n\nmore\n"
    )
    document.write_text(others)

    write_docs(results, document)
    once = document.read_text()
    write_docs(results, document)

    assert document.read_text() == once
    assert once.startswith(others)
    assert once.count(SECTION_TITLE) == 1
    assert f"| {OURS} | send |" in once
