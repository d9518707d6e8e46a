"""compute_stats against an independent recomputation from the simulator's raw records."""

from __future__ import annotations

import ast
import re
from collections import Counter, defaultdict
from datetime import date, timedelta

import psycopg
import pytest

from devservices.simulator import generate_records
from include.common.intervals import Interval, resolve_interval
from include.learning_platform.report_model import DailyReport, Figures
from include.learning_platform.report_reader import ReportNotFound, load_report
from include.learning_platform.rules import Attempt, validate_record
from include.learning_platform.stats import NothingPublished, compute_daily_stats
from tests.include.learning_platform.stages import DAY, HOUR, run_stages

COURSE = re.compile(r"^(course-v1:[^:]+)")


def recompute(simulator, interval: Interval) -> tuple[Figures, dict[str | None, Figures], Counter]:
    """The day's figures in plain Python from the records the API serves.

    Independent of the SQL under test: valid records are picked with the validation rules
    (tested on their own), the course is read from the passback with ``ast.literal_eval``
    instead of the pipeline's parser, and every figure is counted by hand.
    """
    valid: list[tuple[str | None, Attempt]] = []
    reasons: Counter = Counter()
    for window in interval.windows(HOUR):
        for record in generate_records(simulator.config, window.start, window.end):
            verdict = validate_record(record, window.start, window.end)
            if isinstance(verdict, Attempt):
                valid.append((course_of(record), verdict))
            else:
                reasons.update(verdict.reasons)
    by_course: dict[str | None, list[Attempt]] = defaultdict(list)
    for course, attempt in valid:
        by_course[course].append(attempt)
    return (
        figures_of([attempt for _, attempt in valid]),
        {course: figures_of(attempts) for course, attempts in by_course.items()},
        reasons,
    )


def course_of(record: dict) -> str | None:
    try:
        passback = ast.literal_eval(record.get("passback_params") or "")
        match = COURSE.match(passback.get("lis_result_sourcedid") or "")
    except (ValueError, SyntaxError, AttributeError, TypeError):
        return None
    return match.group(1) if match else None


def figures_of(attempts: list[Attempt]) -> Figures:
    users = {attempt.user_id for attempt in attempts}
    runs = sum(attempt.attempt_type == "run" for attempt in attempts)
    submits = sum(attempt.attempt_type == "submit" for attempt in attempts)
    successes = sum(attempt.attempt_type == "submit" and attempt.is_correct for attempt in attempts)
    return Figures(
        unique_users=len(users),
        runs=runs,
        submits=submits,
        successful_submits=successes,
        success_share=successes / submits if submits else None,
        avg_submits_per_user=submits / len(users) if users else None,
        avg_successful_submits_per_user=successes / len(users) if users else None,
    )


def assert_same_figures(actual: Figures, expected: Figures) -> None:
    for name in Figures.__dataclass_fields__:
        got, want = getattr(actual, name), getattr(expected, name)
        if want is None or isinstance(want, int):
            assert got == want, name
        else:
            assert got == pytest.approx(want, rel=1e-12), name


def publish_day(
    conn: psycopg.Connection, client, interval: Interval = DAY, run_id: str = "run"
) -> DailyReport:
    run_stages(conn, client, interval, dag_run_id=run_id)
    compute_daily_stats(conn, interval, dag_run_id=run_id)
    return load_report(conn, interval.day)


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({}, id="default-mix"),
        pytest.param({"seed": 7, "records_per_day": 4000}, id="another-seed"),
        pytest.param(
            {
                "defects": {
                    "user_id_null": 0.1,
                    "passback_not_dict": 0.1,
                    "is_correct_on_run": 0.05,
                    "passback_missing_keys": 0.1,
                    "outside_window": 0.05,
                }
            },
            id="many-defects",
        ),
    ],
)
def test_daily_figures_equal_an_independent_recomputation(simulator, api_client, warehouse, settings) -> None:
    simulator.configure(**settings)

    report = publish_day(warehouse, api_client)

    expected, expected_courses, expected_reasons = recompute(simulator, DAY)
    assert report.stats.loaded == expected.runs + expected.submits > 0
    assert_same_figures(report.stats.figures, expected)
    assert {course.course_id: course.figures for course in report.courses}.keys() == expected_courses.keys()
    for course in report.courses:
        assert_same_figures(course.figures, expected_courses[course.course_id])
    assert dict(report.quarantine_by_reason) == dict(expected_reasons)
    assert report.stats.quarantined == report.stats.fetched - report.stats.loaded
    assert len(report.courses) > 1, "the simulator spreads attempts over several courses"


def test_an_empty_day_has_zero_counts_and_no_shares(simulator, api_client, warehouse) -> None:
    simulator.configure(empty_dates=[DAY.day.isoformat()])

    report = publish_day(warehouse, api_client)

    assert not report.has_data
    assert report.stats.figures == Figures(0, 0, 0, 0, None, None, None)
    assert report.courses == ()
    assert report.quarantine_by_reason == ()


def test_recomputing_a_day_replaces_its_rows(simulator, api_client, warehouse) -> None:
    publish_day(warehouse, api_client, run_id="first")
    simulator.configure(records_per_day=3000)

    report = publish_day(warehouse, api_client, run_id="second")

    stats_rows, course_rows, reason_rows = warehouse.execute(
        "SELECT (SELECT count(*) FROM learning_platform.daily_stats),"
        " (SELECT count(*) FROM learning_platform.daily_course_stats),"
        " (SELECT count(*) FROM learning_platform.daily_quarantine_reasons)"
    ).fetchone()
    assert (stats_rows, course_rows, reason_rows) == (
        1,
        len(report.courses),
        len(report.quarantine_by_reason),
    )
    assert report.stats.computed_at
    assert warehouse.execute("SELECT dag_run_id FROM learning_platform.daily_stats").fetchone() == ("second",)
    assert report.stats.fetched == 3000
    expected, _, _ = recompute(simulator, DAY)
    assert_same_figures(report.stats.figures, expected)


def test_test_mode_figures_cover_the_first_hour_and_say_so(simulator, api_client, warehouse) -> None:
    hour = resolve_interval(data_interval_start=DAY.start, data_interval_end=DAY.end, test_mode=True)

    report = publish_day(warehouse, api_client, hour)

    assert report.stats.partial
    assert report.stats.interval_end - report.stats.interval_start == HOUR
    expected, _, _ = recompute(simulator, hour)
    assert_same_figures(report.stats.figures, expected)


def test_the_history_holds_the_last_thirty_days_oldest_first(simulator, api_client, warehouse) -> None:
    simulator.configure(records_per_day=200)
    days = [DAY.day - timedelta(days=offset) for offset in (40, 29, 3, 1, 0)]
    for day in days:
        publish_day(warehouse, api_client, Interval.for_day(day))

    report = load_report(warehouse, DAY.day)

    assert [stats.day for stats in report.history] == days[1:]


def test_statistics_need_a_published_load(warehouse) -> None:
    with pytest.raises(NothingPublished, match="clear this run from `load`"):
        compute_daily_stats(warehouse, DAY, dag_run_id="run")
    with pytest.raises(ReportNotFound, match="clear this run from `compute_stats`"):
        load_report(warehouse, date(2026, 11, 22))
