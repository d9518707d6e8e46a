"""The data-quality gate: each check fails on the fault it exists for, and its verdict is kept."""

from __future__ import annotations

from datetime import timedelta

import pytest

from include.common.intervals import Interval
from include.learning_platform.quality import (
    QualityFacts,
    StatsMissing,
    VolumeRule,
    check_day,
    evaluate,
    judge_volume,
)
from include.learning_platform.report_model import QualityCheck
from include.learning_platform.report_reader import load_report
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
        "volume_normal": True,
    }


def test_each_check_fails_on_its_own_fault() -> None:
    nothing_loaded = {**FIGURES, "loaded": 0, "quarantined": 100, "runs": 0, "submits": 0}
    assert verdict(QualityFacts(100, nothing_loaded, dict(nothing_loaded), 0), 1.0) == {
        "attempts_present": False,
        "rejected_share": True,
        "no_duplicate_attempts": True,
        "stats_match_warehouse": True,
        "volume_normal": True,
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


NORMAL_DAYS = (15_000, 14_200, 15_900, 9_800, 15_300)  # median 15,000


def volume(
    judged: int, earlier: tuple[int, ...] = NORMAL_DAYS, *, quiet: bool = False, **rule
) -> QualityCheck:
    return judge_volume(judged, earlier, VolumeRule(**rule), declared_quiet=quiet)


def test_an_empty_day_after_normal_days_fails_and_says_what_was_expected() -> None:
    check = volume(0)
    assert not check.passed
    assert (check.observed, check.expected) == (
        "0 judged",
        "at least 3000 (0.2 × 15000, the median of the 5 earlier dates)",
    )
    # Nothing judged, so nothing wrong: every other check passes, and only volume catches the day.
    empty = dict.fromkeys(FIGURES, 0)
    assert [
        name
        for name, passed in verdict(QualityFacts(0, empty, dict(empty), 0, NORMAL_DAYS)).items()
        if not passed
    ] == ["volume_normal"]


def test_a_quiet_day_above_the_ratio_passes_and_the_bar_is_inclusive() -> None:
    assert volume(3_000).passed
    assert not volume(2_999).passed
    assert volume(5_000, min_ratio=0.3).passed
    assert not volume(4_499, min_ratio=0.3).passed


def test_one_odd_day_does_not_move_the_bar() -> None:
    assert not volume(2_999, (15_000, 15_000, 0, 15_000)).passed
    assert volume(3_000, (15_000, 15_000, 1_000_000, 15_000)).passed


def test_a_declared_quiet_day_passes_whatever_its_count() -> None:
    check = volume(0, quiet=True, min_records=100)
    assert check.passed
    assert check.observed == "0 judged on a date declared quiet"


def test_a_new_warehouse_is_held_to_the_floor_alone() -> None:
    assert volume(0, ()).passed
    assert volume(0, (15_000, 15_000)).passed
    check = volume(0, (15_000, 15_000), min_records=100)
    assert not check.passed
    assert check.expected == "at least 100 (the floor only: 2 earlier dates on record, the ratio needs 3)"
    assert not volume(0, (15_000, 15_000, 15_000)).passed


def test_the_floor_holds_whatever_the_history() -> None:
    assert not volume(50, (60, 40, 50), min_records=100).passed
    check = volume(2_500, min_records=3_500)
    assert not check.passed
    assert check.expected == "at least 3500 (0.2 × 15000, the median of the 5 earlier dates; floor 3500)"
    assert volume(100, (60, 40, 50), min_records=100).passed


def test_the_ratio_asks_for_whole_records_without_rounding_errors() -> None:
    # 0.1 × 30 is 3.0000000000000004 in floating point; the bar is 3 records, not 4.
    assert volume(3, (30, 30, 30), min_ratio=0.1).passed
    big = volume(0, (1_000_000, 1_000_001, 999_999), min_ratio=0.125)
    assert big.expected == "at least 125000 (0.125 × 1000000, the median of the 3 earlier dates)"


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


def run_day(warehouse, api_client, interval: Interval, **checks) -> dict[str, object]:
    run_stages(warehouse, api_client, interval, dag_run_id=f"run_{interval.day}")
    compute_daily_stats(warehouse, interval, dag_run_id=f"run_{interval.day}")
    verdict = check_day(
        warehouse, interval, max_rejected_share=0.05, dag_run_id=f"run_{interval.day}", **checks
    )
    return {check.name: check for check in verdict}


def test_a_day_the_api_answered_empty_after_normal_days_fails_the_gate(
    simulator, api_client, warehouse
) -> None:
    days = [Interval.for_day(DAY.day + timedelta(days=n)) for n in range(4)]
    empty = days[-1]
    simulator.configure(records_per_day=300, empty_dates=[empty.day.isoformat()])

    first_days = [run_day(warehouse, api_client, day) for day in days[:-1]]
    checks = run_day(warehouse, api_client, empty)

    assert all(day["volume_normal"].passed for day in first_days), "no history is no failure"
    assert not checks["volume_normal"].passed
    assert checks["volume_normal"].observed == "0 judged"
    assert checks["volume_normal"].expected.startswith("at least ")
    assert "the median of the 3 earlier dates" in checks["volume_normal"].expected
    assert [name for name, check in checks.items() if not check.passed] == ["volume_normal"]
    assert load_report(warehouse, empty.day).failed_checks == ("volume_normal",)


def test_a_declared_quiet_day_passes_and_stays_out_of_later_baselines(
    simulator, api_client, warehouse
) -> None:
    days = [Interval.for_day(DAY.day + timedelta(days=n)) for n in range(5)]
    holiday, after = days[3], days[4]
    simulator.configure(records_per_day=300, empty_dates=[holiday.day.isoformat(), after.day.isoformat()])
    for day in days[:3]:
        run_day(warehouse, api_client, day)

    at_holiday = run_day(warehouse, api_client, holiday, quiet_days={holiday.day})
    after_holiday = run_day(warehouse, api_client, after, quiet_days={holiday.day})

    assert at_holiday["volume_normal"].passed
    assert not after_holiday["volume_normal"].passed
    # The next day is compared with the three normal dates: the holiday is not among them.
    assert "the median of the 3 earlier dates" in after_holiday["volume_normal"].expected


def test_a_test_mode_hour_is_compared_with_hours_and_spared_the_daily_floor(
    simulator, api_client, warehouse
) -> None:
    simulator.configure(records_per_day=300)
    for n in range(3):
        run_day(warehouse, api_client, Interval.for_day(DAY.day + timedelta(days=n)))
    hour = Interval(DAY.start + timedelta(days=3), DAY.start + timedelta(days=3, hours=1))

    checks = run_day(warehouse, api_client, hour, volume=VolumeRule(min_records=200))

    assert checks["volume_normal"].passed
    assert checks["volume_normal"].expected.startswith("at least 0 (the floor only: 0 earlier dates")
