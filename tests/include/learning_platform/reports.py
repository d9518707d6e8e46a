"""Reports built by hand for the tests of the renderers (Sheets, email, files): no database needed."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from include.learning_platform.report_model import CourseFigures, DailyReport, DayStats, Figures, QualityCheck

DAY = date(2026, 11, 22)
PASSED = (
    QualityCheck("attempts_present", True, "420", "> 0"),
    QualityCheck("rejected_share", True, "4.55%", "<= 5.00%"),
)
FAILED = (
    QualityCheck("attempts_present", True, "420", "> 0"),
    QualityCheck("rejected_share", False, "12.00%", "<= 5.00%"),
)


def figures(users: int = 40, runs: int = 300, submits: int = 120, successful: int = 45) -> Figures:
    return Figures(
        unique_users=users,
        runs=runs,
        submits=submits,
        successful_submits=successful,
        success_share=successful / submits if submits else None,
        avg_submits_per_user=submits / users if users else None,
        avg_successful_submits_per_user=successful / users if users else None,
    )


def build_report(
    day: date = DAY,
    *,
    day_figures: Figures | None = None,
    checks: tuple[QualityCheck, ...] = PASSED,
    hours: int = 24,
    courses: tuple[tuple[str | None, Figures], ...] | None = None,
    reasons: tuple[tuple[str, int], ...] = (("user_id_missing", 12), ("created_at_invalid", 8)),
) -> DailyReport:
    day_figures = day_figures or figures()
    start = datetime.combine(day, time(), tzinfo=UTC)
    loaded = day_figures.runs + day_figures.submits
    stats = DayStats(
        day=day,
        interval_start=start,
        interval_end=start + timedelta(hours=hours),
        fetched=loaded + 20 if loaded else 0,
        loaded=loaded,
        quarantined=20 if loaded else 0,
        flagged=3 if loaded else 0,
        figures=day_figures,
        computed_at=start + timedelta(days=1, minutes=5),
        failed_checks=tuple(c.name for c in checks if not c.passed) if checks else None,
    )
    if courses is None:
        courses = (("course-a", figures(30, 200, 90, 40)), (None, figures(10, 100, 30, 5))) if loaded else ()
    course_figures = tuple(CourseFigures(course, course_stats) for course, course_stats in courses)
    return DailyReport(stats, reasons if loaded else (), course_figures, checks, (stats,))


def empty_day(day: date = DAY) -> DailyReport:
    return build_report(day, day_figures=figures(0, 0, 0, 0), checks=())
