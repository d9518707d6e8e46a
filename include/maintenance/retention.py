"""The moment before which a maintenance run deletes things.

The cutoff is derived from the run, never from the clock: a retry or a rerun of the same run
computes the same cutoff, so it deletes nothing its first try would have kept.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from include.common.intervals import plain_utc


def run_anchor(
    *,
    data_interval_end: datetime | None,
    logical_date: datetime | None,
    run_after: datetime | None,
) -> datetime:
    """The moment a run stands for: its data interval's end, else its logical date.

    A run triggered through the API with a null logical date has neither; its ``run_after``
    is stored with the run and so is just as stable across retries.
    """
    for moment in (data_interval_end, logical_date, run_after):
        if moment is not None:
            return plain_utc(moment)
    raise ValueError("this run has no data interval, logical date or run_after to anchor retention on")


def retention_cutoff(anchor: datetime, days: int) -> datetime:
    """Everything last touched strictly before this moment is older than ``days`` days."""
    if days < 1:
        raise ValueError(f"retention must be at least one day, got {days}")
    return anchor - timedelta(days=days)
