"""Which interval a run owns, and how it is cut into fetch windows."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pendulum
import pytest

from include.common.intervals import Interval, resolve_interval

DAY = Interval(datetime(2026, 11, 22, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC))


def test_a_chosen_date_overrides_the_data_interval() -> None:
    interval = resolve_interval(
        chosen_date="2026-03-01",
        data_interval_start=pendulum.datetime(2026, 11, 22),
        data_interval_end=pendulum.datetime(2026, 11, 23),
    )
    assert interval == Interval.for_day(datetime(2026, 3, 1).date())


def test_without_a_chosen_date_the_data_interval_is_used_in_utc() -> None:
    interval = resolve_interval(
        chosen_date=None,
        data_interval_start=pendulum.datetime(2026, 11, 22, 3, tz="Europe/Moscow"),
        data_interval_end=pendulum.datetime(2026, 11, 23, 3, tz="Europe/Moscow"),
    )
    assert interval == DAY
    assert type(interval.start) is datetime


def test_test_mode_keeps_the_first_hour() -> None:
    interval = resolve_interval(
        chosen_date="2026-11-22", data_interval_start=None, data_interval_end=None, test_mode=True
    )
    assert interval == Interval(DAY.start, DAY.start + timedelta(hours=1))


def test_a_run_with_neither_date_nor_interval_says_what_to_do() -> None:
    with pytest.raises(ValueError, match="'date' parameter"):
        resolve_interval(chosen_date=None, data_interval_start=None, data_interval_end=None)


@pytest.mark.parametrize("bad", ["22.11.2026", "2026-11-31", "yesterday"])
def test_a_malformed_date_is_refused_with_the_expected_format(bad: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        resolve_interval(chosen_date=bad, data_interval_start=None, data_interval_end=None)


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
