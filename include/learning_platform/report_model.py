"""The day's report as plain values: what every destination (Sheets, local files, email) shows.

``report_reader`` builds them from the warehouse, ``report_layout`` turns them into tables.
They are frozen, so a renderer cannot change what another one shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


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
