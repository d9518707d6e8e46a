"""The data-quality gate: each check fails on the fault it exists for, and its verdict is kept."""

from __future__ import annotations

import pytest

from include.learning_platform.quality import QualityFacts, StatsMissing, check_day, evaluate
from include.learning_platform.report import load_report
from include.learning_platform.stats import compute_daily_stats
from tests.include.learning_platform.stages import DAY, run_stages

FIGURES = {
    "loaded": 90,
    "quarantined": 10,
    "unique_users": 5,
    "runs": 40,
    "submits": 50,
    "successful_submits": 20,
}


def verdict(facts: QualityFacts, max_rejected_share: float = 0.2) -> dict[str, bool]:
    return {check.name: check.passed for check in evaluate(facts, max_rejected_share=max_rejected_share)}


def test_consistent_figures_pass_every_check() -> None:
    assert verdict(QualityFacts(100, FIGURES, dict(FIGURES), 0)) == {
        "attempts_present": True,
        "rejected_share": True,
        "no_duplicate_attempts": True,
        "stats_match_warehouse": True,
    }


def test_each_check_fails_on_its_own_fault() -> None:
    nothing_loaded = {**FIGURES, "loaded": 0, "quarantined": 100, "runs": 0, "submits": 0}
    assert verdict(QualityFacts(100, nothing_loaded, dict(nothing_loaded), 0), 1.0) == {
        "attempts_present": False,
        "rejected_share": True,
        "no_duplicate_attempts": True,
        "stats_match_warehouse": True,
    }
    assert not verdict(QualityFacts(100, FIGURES, dict(FIGURES), 0), max_rejected_share=0.09)[
        "rejected_share"
    ]
    assert not verdict(QualityFacts(100, FIGURES, dict(FIGURES), 3))["no_duplicate_attempts"]
    assert not verdict(QualityFacts(100, FIGURES, {**FIGURES, "runs": 41}, 0))["stats_match_warehouse"]


def test_an_empty_source_is_not_a_failure() -> None:
    empty = dict.fromkeys(FIGURES, 0)
    assert all(verdict(QualityFacts(0, empty, dict(empty), 0)).values())


def test_the_threshold_is_inclusive_and_the_observation_is_readable() -> None:
    checks = evaluate(QualityFacts(100, FIGURES, dict(FIGURES), 0), max_rejected_share=0.1)
    (share,) = [check for check in checks if check.name == "rejected_share"]
    assert share.passed
    assert (share.observed, share.expected) == ("10.00% (10 of 100)", "at most 10.00%")


def test_a_clean_day_passes_and_the_report_carries_the_verdict(simulator, api_client, warehouse) -> None:
    run_stages(warehouse, api_client)
    compute_daily_stats(warehouse, DAY, dag_run_id="run")

    checks = check_day(warehouse, DAY, max_rejected_share=0.05, dag_run_id="run")

    assert all(check.passed for check in checks)
    report = load_report(warehouse, DAY.day)
    assert report.reliable
    assert report.stats.reliable
    assert report.checks == tuple(sorted(checks, key=lambda check: check.name))


def test_a_duplicated_attempt_and_a_changed_warehouse_are_caught(simulator, api_client, warehouse) -> None:
    run_stages(warehouse, api_client)
    compute_daily_stats(warehouse, DAY, dag_run_id="run")
    # Something outside the pipeline stores one attempt a second time after the figures were computed.
    warehouse.execute(
        "INSERT INTO learning_platform.attempts (user_id, oauth_consumer_key, lis_result_sourcedid,"
        " lis_outcome_service_url, is_correct, attempt_type, created_at, defects, source_window_start,"
        " source_position, dag_run_id)"
        " SELECT user_id, oauth_consumer_key, lis_result_sourcedid, lis_outcome_service_url, is_correct,"
        " attempt_type, created_at, defects, source_window_start, source_position + 1000000, 'intruder'"
        " FROM learning_platform.attempts ORDER BY source_window_start, source_position LIMIT 1"
    )

    checks = {
        check.name: check for check in check_day(warehouse, DAY, max_rejected_share=0.05, dag_run_id="run")
    }

    assert not checks["no_duplicate_attempts"].passed
    assert checks["no_duplicate_attempts"].observed == "1 extra copies"
    assert not checks["stats_match_warehouse"].passed
    assert "in the statistics" in checks["stats_match_warehouse"].observed
    report = load_report(warehouse, DAY.day)
    assert report.failed_checks == ("no_duplicate_attempts", "stats_match_warehouse")
    assert report.stats.failed_checks == ("no_duplicate_attempts", "stats_match_warehouse")


def test_recomputing_the_figures_voids_the_previous_verdict(simulator, api_client, warehouse) -> None:
    run_stages(warehouse, api_client)
    compute_daily_stats(warehouse, DAY, dag_run_id="first")
    check_day(warehouse, DAY, max_rejected_share=0.05, dag_run_id="first")

    compute_daily_stats(warehouse, DAY, dag_run_id="second")

    report = load_report(warehouse, DAY.day)
    assert report.checks == ()
    assert report.stats.failed_checks is None
    assert not report.reliable


def test_checks_need_the_figures(warehouse) -> None:
    with pytest.raises(StatsMissing, match="clear this run from `compute_stats`"):
        check_day(warehouse, DAY, max_rejected_share=0.05, dag_run_id="run")
