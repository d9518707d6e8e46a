"""The cutoff comes from the run, not the clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pendulum
import pytest

from include.maintenance.retention import retention_cutoff, run_anchor

END = pendulum.datetime(2026, 11, 23, 3, tz="UTC")


def test_the_data_interval_end_anchors_the_run() -> None:
    anchor = run_anchor(
        data_interval_end=END,
        logical_date=pendulum.datetime(2026, 11, 22, 3, tz="UTC"),
        run_after=pendulum.datetime(2026, 11, 23, 3, 5, tz="UTC"),
    )
    assert anchor == datetime(2026, 11, 23, 3, tzinfo=UTC)


def test_a_run_without_a_logical_date_falls_back_to_its_run_after() -> None:
    run_after = pendulum.datetime(2026, 11, 23, 9, 30, tz="Europe/Moscow")

    anchor = run_anchor(data_interval_end=None, logical_date=None, run_after=run_after)

    assert anchor == datetime(2026, 11, 23, 6, 30, tzinfo=UTC)


def test_the_cutoff_is_counted_back_in_days_and_keeps_its_time_zone() -> None:
    # Pendulum's own arithmetic loses a datetime.UTC zone: the cutoff must still say +00:00,
    # or `airflow db clean` would read it in Airflow's default time zone.
    cutoff = retention_cutoff(run_anchor(data_interval_end=END, logical_date=None, run_after=None), 30)

    assert cutoff.isoformat() == "2026-10-24T03:00:00+00:00"


@pytest.mark.parametrize("days", [0, -1])
def test_retention_shorter_than_a_day_is_refused(days: int) -> None:
    with pytest.raises(ValueError, match="at least one day"):
        retention_cutoff(END, days)


def test_a_naive_moment_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        run_anchor(data_interval_end=datetime(2026, 11, 23), logical_date=None, run_after=None)
