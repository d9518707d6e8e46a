"""The day's report read from the warehouse: ``daily_stats`` and its companions as report values.

``compute_stats`` and ``check_quality`` write those tables; every destination reads the report
through ``load_report``, so the sheet, the files and the email show the same figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import psycopg

from include.common.failures import PermanentFailure
from include.learning_platform.report_model import CourseFigures, DailyReport, DayStats, Figures, QualityCheck
from include.learning_platform.warehouse import sql

HISTORY_DAYS = 30


class ReportNotFound(PermanentFailure, LookupError):
    """The warehouse has no statistics for the day: compute_stats has not run for it."""


def load_report(conn: psycopg.Connection, day: date, *, history_days: int = HISTORY_DAYS) -> DailyReport:
    """The report for ``day`` as the warehouse holds it now."""
    with conn.cursor() as cursor:
        cursor.execute(sql("select_daily_stats"), {"first_day": day, "last_day": day})
        row = cursor.fetchone()
        if row is None:
            raise ReportNotFound(
                f"no statistics for {day} in the warehouse: clear this run from `compute_stats` "
                "(Clear on the compute_stats task, with downstream tasks)"
            )
        stats = _day_stats(row)
        cursor.execute(sql("select_daily_quarantine_reasons"), {"day": day})
        reasons = tuple((reason, count) for reason, count in cursor.fetchall())
        cursor.execute(sql("select_daily_course_stats"), {"day": day})
        courses = tuple(CourseFigures(course_id, _figures(*figures)) for course_id, *figures in cursor)
        cursor.execute(sql("select_daily_quality_checks"), {"day": day})
        checks = tuple(QualityCheck(*check) for check in cursor.fetchall())
    history = load_history(conn, first_day=date.fromordinal(day.toordinal() - history_days + 1), last_day=day)
    return DailyReport(stats, reasons, courses, checks, history)


def load_history(conn: psycopg.Connection, *, first_day: date, last_day: date) -> tuple[DayStats, ...]:
    """Every ``daily_stats`` row from ``first_day`` to ``last_day`` inclusive, oldest first."""
    with conn.cursor() as cursor:
        cursor.execute(sql("select_daily_stats"), {"first_day": first_day, "last_day": last_day})
        return tuple(_day_stats(row) for row in cursor.fetchall())


def _day_stats(row: Sequence) -> DayStats:
    (day, start, end, fetched, loaded, quarantined, flagged, *figures, computed_at, failed_checks, copies) = (
        row
    )
    return DayStats(
        day=day,
        interval_start=start,
        interval_end=end,
        fetched=fetched,
        loaded=loaded,
        quarantined=quarantined,
        flagged=flagged,
        figures=_figures(*figures),
        computed_at=computed_at,
        failed_checks=None if failed_checks is None else tuple(failed_checks),
        boundary_copies=copies,
    )


def _figures(unique_users, runs, submits, successful_submits, share, avg_submits, avg_successful) -> Figures:
    return Figures(
        unique_users=unique_users,
        runs=runs,
        submits=submits,
        successful_submits=successful_submits,
        success_share=_float(share),
        avg_submits_per_user=_float(avg_submits),
        avg_successful_submits_per_user=_float(avg_successful),
    )


def _float(value: object) -> float | None:
    # numeric columns arrive as Decimal; the report works in floats.
    return None if value is None else float(value)
