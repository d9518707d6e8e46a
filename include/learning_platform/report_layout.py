"""The report's tables and notices: one definition of every row and column, shared by all destinations.

``summary_tables``, ``history_table`` and ``notices`` turn report values into titled tables of
typed cells (``Kind``); the Sheets, file and email renderers only format those cells, so they
agree cell for cell. Nothing here reads the warehouse or talks to Google or a mail server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from include.learning_platform.report_model import DailyReport, DayStats
from include.learning_platform.texts import Texts


class Kind(StrEnum):
    """How a cell is typed and formatted wherever the tables are rendered."""

    DATE = "date"  # a datetime.date
    TIMESTAMP = "timestamp"  # an aware datetime, shown in UTC
    INTEGER = "integer"
    DECIMAL = "decimal"  # a float, two decimals
    PERCENT = "percent"  # a float share in [0, 1], shown as a percentage
    TEXT = "text"


class Percent(float):
    """A share in [0, 1], shown as a percentage (a float subclass, so it computes like one)."""

    __slots__ = ()


def kind_of(value: object) -> Kind | None:
    """The kind of a cell from its value's type; None for an empty cell."""
    if value is None:
        return None
    if isinstance(value, Percent):
        return Kind.PERCENT
    if isinstance(value, float):
        return Kind.DECIMAL
    if isinstance(value, bool):
        raise TypeError("report cells hold no booleans: use a label")
    if isinstance(value, int):
        return Kind.INTEGER
    if isinstance(value, datetime):  # before date: a datetime is a date too
        return Kind.TIMESTAMP
    if isinstance(value, date):
        return Kind.DATE
    if isinstance(value, str):
        return Kind.TEXT
    raise TypeError(f"unsupported report cell {value!r}")


@dataclass(frozen=True, slots=True)
class Column:
    label: str
    kind: Kind | None  # None: the column mixes kinds, each cell's comes from kind_of(value)


@dataclass(frozen=True, slots=True)
class Table:
    """A titled table of typed cells (see ``kind_of``); ``None`` is an empty cell."""

    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[object, ...], ...]


def history_columns(texts: Texts) -> tuple[Column, ...]:
    return (
        Column(texts.date, Kind.DATE),
        Column(texts.unique_users, Kind.INTEGER),
        Column(texts.runs, Kind.INTEGER),
        Column(texts.submits, Kind.INTEGER),
        Column(texts.successful_submits, Kind.INTEGER),
        Column(texts.success_share, Kind.PERCENT),
        Column(texts.avg_submits_per_user, Kind.DECIMAL),
        Column(texts.avg_successful_submits_per_user, Kind.DECIMAL),
        Column(texts.fetched, Kind.INTEGER),
        Column(texts.loaded, Kind.INTEGER),
        Column(texts.quarantined, Kind.INTEGER),
        Column(texts.quality, Kind.TEXT),
        Column(texts.computed_at, Kind.TIMESTAMP),
    )


def history_row(stats: DayStats, texts: Texts) -> tuple[object, ...]:
    """The day's row of the history table; its first cell (the date) is the row's key."""
    figures = stats.figures
    return (
        stats.day,
        figures.unique_users,
        figures.runs,
        figures.submits,
        figures.successful_submits,
        _percent(figures.success_share),
        figures.avg_submits_per_user,
        figures.avg_successful_submits_per_user,
        stats.fetched,
        stats.loaded,
        stats.quarantined,
        quality_label(stats, texts),
        stats.computed_at,
    )


def history_table(history: Sequence[DayStats], texts: Texts) -> Table:
    return Table(
        texts.history_title,
        history_columns(texts),
        tuple(history_row(stats, texts) for stats in history),
    )


def quality_label(stats: DayStats, texts: Texts) -> str:
    if stats.failed_checks is None:
        return texts.quality_not_checked
    if stats.failed_checks:
        return f"{texts.quality_failed}: {'; '.join(map(texts.check_label, stats.failed_checks))}"
    return texts.quality_passed


def summary_tables(report: DailyReport, texts: Texts) -> tuple[Table, ...]:
    """The day's summary: overview, figures, quarantine by reason, courses, quality checks."""
    stats, figures = report.stats, report.stats.figures
    overview = Table(
        texts.summary_title,
        (Column(texts.metric, Kind.TEXT), Column(texts.value, None)),
        (
            (texts.date, stats.day),
            (texts.covered_interval, texts.interval(stats.interval_start, stats.interval_end)),
            (texts.computed_at, stats.computed_at),
            (texts.quality, quality_label(stats, texts)),
        ),
    )
    figures_table = Table(
        texts.figures_title,
        (Column(texts.metric, Kind.TEXT), Column(texts.value, None)),
        (
            (texts.unique_users, figures.unique_users),
            (texts.runs, figures.runs),
            (texts.submits, figures.submits),
            (texts.successful_submits, figures.successful_submits),
            (texts.success_share, _percent(figures.success_share)),
            (texts.avg_submits_per_user, figures.avg_submits_per_user),
            (texts.avg_successful_submits_per_user, figures.avg_successful_submits_per_user),
            (texts.fetched, stats.fetched),
            (texts.loaded, stats.loaded),
            (texts.flagged, stats.flagged),
            (texts.quarantined, stats.quarantined),
            (texts.boundary_copies, stats.boundary_copies),
        ),
    )
    reasons = Table(
        texts.quarantine_title,
        (Column(texts.reason, Kind.TEXT), Column(texts.records, Kind.INTEGER)),
        tuple((texts.reason_label(reason), count) for reason, count in report.quarantine_by_reason),
    )
    courses = Table(
        texts.courses_title,
        (
            Column(texts.course, Kind.TEXT),
            Column(texts.unique_users, Kind.INTEGER),
            Column(texts.runs, Kind.INTEGER),
            Column(texts.submits, Kind.INTEGER),
            Column(texts.successful_submits, Kind.INTEGER),
            Column(texts.success_share, Kind.PERCENT),
        ),
        tuple(
            (
                course.course_id or texts.unknown_course,
                course.figures.unique_users,
                course.figures.runs,
                course.figures.submits,
                course.figures.successful_submits,
                _percent(course.figures.success_share),
            )
            for course in report.courses
        ),
    )
    checks = Table(
        texts.checks_title,
        (
            Column(texts.check, Kind.TEXT),
            Column(texts.result, Kind.TEXT),
            Column(texts.observed, Kind.TEXT),
            Column(texts.expected, Kind.TEXT),
        ),
        tuple(
            (
                texts.check_label(check.name),
                texts.quality_passed if check.passed else texts.quality_failed,
                check.observed,
                check.expected,
            )
            for check in report.checks
        ),
    )
    return overview, figures_table, reasons, courses, checks


def _percent(share: float | None) -> Percent | None:
    return None if share is None else Percent(share)


def notices(report: DailyReport, texts: Texts) -> tuple[str, ...]:
    """The warnings every destination shows above the figures, most important first."""
    stats = report.stats
    out = []
    if not report.checks:
        out.append(texts.not_checked)
    elif not report.reliable:
        out.append(texts.unreliable.format(checks="; ".join(map(texts.check_label, report.failed_checks))))
    if not report.has_data:
        out.append(texts.no_data)
    if stats.partial:
        out.append(
            texts.partial_day.format(interval=texts.interval(stats.interval_start, stats.interval_end))
        )
    return tuple(out)
