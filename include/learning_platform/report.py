"""The day's report as plain values: what every destination (Sheets, local files, email) shows.

``load_report`` reads it from the warehouse (``daily_stats`` and its companions, written by
``compute_stats`` and ``check_quality``); renderers turn it into tables with
``history_table`` and ``summary_tables``, so the sheet, the files and the email agree cell
for cell. Nothing here talks to Google or to a mail server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

import psycopg

from include.common.failures import PermanentFailure
from include.learning_platform.texts import Texts
from include.learning_platform.warehouse import sql

HISTORY_DAYS = 30


class Kind(StrEnum):
    """How a cell is typed and formatted wherever the tables are rendered."""

    DATE = "date"  # a datetime.date
    TIMESTAMP = "timestamp"  # an aware datetime, shown in UTC
    INTEGER = "integer"
    DECIMAL = "decimal"  # a float, two decimals
    PERCENT = "percent"  # a float share in [0, 1], shown as a percentage
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class Figures:
    """The original script's figures for one day (or one course on that day).

    Shares and averages are None when their denominator is zero (an empty day), never 0 and
    never a division error: "no data" is not the same as "nobody succeeded".
    """

    unique_users: int
    runs: int
    submits: int
    successful_submits: int
    success_share: float | None  # successful submits / submits
    avg_submits_per_user: float | None  # submits / unique users
    avg_successful_submits_per_user: float | None  # successful submits / unique users


@dataclass(frozen=True, slots=True)
class CourseFigures:
    course_id: str | None  # None: the attempt's passback details name no course
    figures: Figures


@dataclass(frozen=True, slots=True)
class QualityCheck:
    """One data-quality check of the day, as ``check_quality`` recorded it."""

    name: str
    passed: bool
    observed: str
    expected: str


@dataclass(frozen=True, slots=True)
class DayStats:
    """One row of ``daily_stats``: a day's figures and the counts they were computed from."""

    day: date
    interval_start: datetime
    interval_end: datetime
    fetched: int
    loaded: int
    quarantined: int
    flagged: int
    figures: Figures
    computed_at: datetime
    failed_checks: tuple[str, ...] | None  # None: the checks have not run on these figures
    boundary_copies: int = 0  # fetched = loaded + quarantined + boundary copies (rules.BoundaryCopy)

    @property
    def partial(self) -> bool:
        """The figures cover less than the whole day (a test-mode run)."""
        return (self.interval_end - self.interval_start).total_seconds() < 86_400

    @property
    def reliable(self) -> bool:
        return self.failed_checks == ()


@dataclass(frozen=True, slots=True)
class DailyReport:
    stats: DayStats
    quarantine_by_reason: tuple[
        tuple[str, int], ...
    ]  # most frequent first; a record counts under each reason
    courses: tuple[CourseFigures, ...]  # busiest first
    checks: tuple[QualityCheck, ...]  # empty: the checks have not run on these figures
    history: tuple[DayStats, ...]  # up to HISTORY_DAYS days ending with this one, oldest first

    @property
    def day(self) -> date:
        return self.stats.day

    @property
    def has_data(self) -> bool:
        return self.stats.loaded > 0

    @property
    def reliable(self) -> bool:
        """Every quality check ran and passed."""
        return bool(self.checks) and all(check.passed for check in self.checks)

    @property
    def failed_checks(self) -> tuple[str, ...]:
        return tuple(check.name for check in self.checks if not check.passed)


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


class Destination(StrEnum):
    SHEETS = "sheets"  # published to Google Sheets
    LOCAL_FILE = "local_file"  # no Google credentials: written to a local file instead


@dataclass(frozen=True, slots=True)
class Publication:
    """Where ``publish_report`` put the day's report (a link for the email)."""

    destination: Destination
    location: str  # the sheet's URL, or the local file's path

    def as_dict(self) -> dict[str, str]:
        return {"destination": self.destination.value, "location": self.location}

    @classmethod
    def from_dict(cls, value: dict[str, str]) -> Publication:
        return cls(Destination(value["destination"]), value["location"])


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


# --- tables: one definition of every row and column, shared by all destinations -------------


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
