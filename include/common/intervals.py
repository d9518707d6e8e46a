"""The time interval a pipeline run owns, and its split into fetch windows.

A run owns a half-open UTC interval ``[start, end)``: every table it writes is replaced for
exactly that interval, which is what makes reruns and backfills idempotent. The interval
comes from Airflow's data interval, unless the person who triggered the run chose a date.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

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
    chosen_date: str | None,
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
    test_mode: bool = False,
) -> Interval:
    """The interval a run processes.

    ``chosen_date`` (``YYYY-MM-DD``, from the trigger form) wins over the data interval, so a
    person can run any day from the UI. ``test_mode`` keeps only the first hour, as the
    original script's test mode did.
    """
    if chosen_date:
        try:
            interval = Interval.for_day(date.fromisoformat(chosen_date))
        except ValueError:
            raise ValueError(f"the 'date' parameter must be YYYY-MM-DD, got {chosen_date!r}") from None
    elif data_interval_start is not None and data_interval_end is not None:
        interval = Interval(_as_utc(data_interval_start), _as_utc(data_interval_end))
    else:
        raise ValueError(
            "this run has no data interval (a manual run without a logical date): "
            "choose a day in the 'date' parameter"
        )
    if test_mode:
        interval = Interval(interval.start, min(interval.end, interval.start + TEST_MODE_SPAN))
    return interval


def _as_utc(moment: datetime) -> datetime:
    # Airflow hands over pendulum DateTimes; plain datetimes keep the rest of the code simple.
    moment = moment.astimezone(UTC)
    return datetime(*moment.timetuple()[:6], moment.microsecond, tzinfo=UTC)
