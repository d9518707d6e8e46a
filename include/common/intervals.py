"""The time interval a pipeline run owns, and its split into fetch windows.

A run owns a half-open UTC interval ``[start, end)``: every table it writes is replaced for
exactly that interval, which is what makes reruns and backfills idempotent. The interval is
Airflow's data interval, one UTC day (see ``include.common.timetables``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from include.common.failures import ConfigurationError

ONE_DAY = timedelta(days=1)
TEST_MODE_SPAN = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Interval:
    """A half-open UTC interval ``[start, end)``."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("interval bounds must be timezone-aware")
        if self.start >= self.end:
            raise ValueError(f"empty interval: {self.start.isoformat()} >= {self.end.isoformat()}")

    @classmethod
    def for_day(cls, day: date) -> Interval:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return cls(start, start + ONE_DAY)

    @property
    def day(self) -> date:
        """The UTC calendar day the interval starts on (the report date)."""
        return self.start.astimezone(UTC).date()

    def windows(self, size: timedelta) -> Iterator[Interval]:
        """Consecutive windows of ``size`` covering the interval; the last may be shorter."""
        if size <= timedelta(0):
            raise ValueError("window size must be positive")
        start = self.start
        while start < self.end:
            end = min(start + size, self.end)
            yield Interval(start, end)
            start = end

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"


def resolve_interval(
    *,
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
    test_mode: bool = False,
) -> Interval:
    """The interval a run processes: its data interval, one whole UTC day.

    The DAG's timetable (``include.common.timetables``) makes a run's data interval the UTC day
    of its logical date, which is also what the UI shows; anything else (a data interval typed
    by hand in the trigger form, a run without a logical date) is refused rather than reported
    under a day it does not cover. ``test_mode`` keeps only the first hour, as the original
    script's test mode did.
    """
    if data_interval_start is None or data_interval_end is None:
        raise ConfigurationError(
            "this run has no data interval (triggered without a logical date): trigger it again "
            "with the logical date set to the UTC day to process"
        )
    interval = Interval(plain_utc(data_interval_start), plain_utc(data_interval_end))
    if interval != Interval.for_day(interval.day):
        raise ConfigurationError(
            f"this run's data interval {interval} is not one whole UTC day: trigger it again with "
            "the data interval inferred from the logical date (the day to process)"
        )
    if test_mode:
        interval = Interval(interval.start, interval.start + TEST_MODE_SPAN)
    return interval


def plain_utc(moment: datetime) -> datetime:
    """``moment``, a run's date as Airflow hands it over, as a plain ``datetime`` in UTC.

    Airflow's dates are pendulum DateTimes, whose arithmetic drops a ``datetime.UTC`` zone
    (2025-06-01T03:00Z minus a day comes out naive). A naive moment is refused: the zone it
    meant would be a guess.
    """
    if moment.tzinfo is None:
        raise ValueError(f"a run's moments are timezone-aware, got {moment.isoformat()}")
    moment = moment.astimezone(UTC)
    return datetime(*moment.timetuple()[:6], moment.microsecond, tzinfo=UTC)
