"""What a task reads from its Airflow context: the day it owns and the fetch window."""

from __future__ import annotations

from datetime import timedelta

import pytest

from include.common.intervals import Interval
from include.learning_platform.tasks import fetch_window, run_interval
from tests.include.learning_platform.stages import DAY


def context(**params: object) -> dict[str, object]:
    return {
        "params": {"test_mode": False, "window_minutes": 60, "language": None} | params,
        "data_interval_start": DAY.start,
        "data_interval_end": DAY.end,
    }


def test_a_run_owns_the_day_of_its_data_interval() -> None:
    assert run_interval(context()) == DAY


def test_a_test_mode_run_owns_the_first_hour_of_its_day() -> None:
    assert run_interval(context(test_mode=True)) == Interval(DAY.start, DAY.start + timedelta(hours=1))


def test_a_conf_still_naming_a_date_is_refused_rather_than_ignored() -> None:
    with pytest.raises(ValueError, match="--logical-date"):
        run_interval(context(date="2026-03-01"))


@pytest.mark.parametrize(("minutes", "window"), [(15, timedelta(minutes=15)), (None, timedelta(hours=1))])
def test_an_emptied_fetch_window_means_the_default(minutes: int | None, window: timedelta) -> None:
    assert fetch_window(context(window_minutes=minutes)) == window
