"""Which interval a run owns, and how it is cut into fetch windows."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pendulum
import pytest

from include.common.intervals import Interval, resolve_interval

DAY = Interval(datetime(2026, 11, 22, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC))


def test_the_data_interval_is_used_in_utc() -> None:
    interval = resolve_interval(
        data_interval_start=pendulum.datetime(2026, 11, 22, 3, tz="Europe/Moscow"),
        data_interval_end=pendulum.datetime(2026, 11, 23, 3, tz="Europe/Moscow"),
    )
    assert interval == DAY
    assert type(interval.start) is datetime


def test_a_naive_data_interval_is_refused_not_read_in_the_machines_zone() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        resolve_interval(data_interval_start=datetime(2026, 11, 22), data_interval_end=datetime(2026, 11, 23))


def test_test_mode_keeps_the_first_hour() -> None:
    interval = resolve_interval(data_interval_start=DAY.start, data_interval_end=DAY.end, test_mode=True)
    assert interval == Interval(DAY.start, DAY.start + timedelta(hours=1))


def test_a_run_without_a_data_interval_says_to_set_a_logical_date() -> None:
    with pytest.raises(ValueError, match="logical date set to the UTC day"):
        resolve_interval(data_interval_start=None, data_interval_end=None)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (DAY.start, DAY.start + timedelta(days=2)),  # typed by hand in the trigger form
        (DAY.start + timedelta(hours=6), DAY.end + timedelta(hours=6)),  # a day, not a UTC day
    ],
)
def test_a_data_interval_other_than_one_utc_day_is_refused(start: datetime, end: datetime) -> None:
    with pytest.raises(ValueError, match="not one whole UTC day"):
        resolve_interval(data_interval_start=start, data_interval_end=end)


def test_windows_cover_the_interval_exactly_once() -> None:
    windows = list(DAY.windows(timedelta(minutes=50)))
    assert windows[0].start == DAY.start
    assert windows[-1].end == DAY.end
    assert all(a.end == b.start for a, b in itertools.pairwise(windows))
    assert len(windows) == 29  # 28 windows of 50 minutes, then the last 40


def test_naive_or_empty_intervals_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Interval(datetime(2026, 11, 22), datetime(2026, 11, 23))
    with pytest.raises(ValueError, match="empty interval"):
        Interval(DAY.end, DAY.start)
