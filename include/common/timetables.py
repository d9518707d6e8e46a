"""A daily timetable under which a run's logical date is the UTC day it processes.

Airflow's ``CronDataIntervalTimetable("0 0 * * *")`` already gives a *scheduled* run the day
that just ended as its logical date and data interval, but everything else in the UI points
elsewhere: a manual run's data interval is the day *before* its logical date, and run ids are
named after the moment a run became due (``scheduled__2026-11-02T00:00:00+00:00`` processes
November 1). Pipelines that had to accept a separate "date" parameter then showed one day in
the UI and processed another.

``UtcDayTimetable`` keeps the schedule (the run that starts at 00:00 UTC on day D+1 processes
day D) and changes what a person sees and chooses:

* a manual run processes the UTC day its logical date falls on, so the trigger form's
  *Logical Date* picks the day; a day that has not ended yet (the form's default, "now")
  means the last complete day, never an incomplete today, and a future day is refused;
* run ids name the day processed: ``scheduled__2026-11-01``, and for manual runs, which may
  repeat a day, also the trigger time: ``manual__2026-11-15__at_2026-12-06T03:51:51Z``.

Backfill run ids are not the timetable's to choose (Airflow 3.3 names them after the run's
``run_after``, the end of the day); their logical date and data interval are still the day.

The class extends Airflow's core timetable (the SDK has no base for custom timetables in 3.3),
so the scheduler, the DAG processor and the API server can only load it through a plugin:
``plugins/learning_platform.py`` registers it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pendulum
from airflow.timetables.base import DataInterval
from airflow.timetables.interval import CronDataIntervalTimetable
from airflow.utils.types import DagRunType
from pendulum import DateTime

ONE_DAY = timedelta(days=1)


def day_start(day: date) -> DateTime:
    return pendulum.datetime(day.year, day.month, day.day, tz="UTC")


def manual_day(logical_date: datetime, *, now: datetime) -> date:
    """The UTC day a manual run with ``logical_date``, triggered at ``now``, processes.

    The day the logical date falls on, once that day has ended; while it has not (a logical
    date of "now", the trigger form's default), the last complete day. A later day has no data
    yet: asking for it is a mistake to report, not to round down silently.
    """
    day = logical_date.astimezone(UTC).date()
    today = now.astimezone(UTC).date()
    if day > today:
        raise ValueError(
            f"logical date {logical_date.isoformat()} falls on {day}, a UTC day that has not ended: "
            f"choose a day up to {today - ONE_DAY}"
        )
    return min(day, today - ONE_DAY)


def run_id(run_type: DagRunType | str, day: date, *, triggered_at: datetime) -> str:
    """A run id that starts with what the run processes.

    Scheduled runs own their day (one per day, like their logical date), so the day alone is
    unique. Other runs may repeat a day: the trigger time, to the second, tells them apart.
    """
    run_type = DagRunType(run_type)
    if run_type == DagRunType.SCHEDULED:
        return f"{run_type.value}__{day.isoformat()}"
    return f"{run_type.value}__{day.isoformat()}__at_{triggered_at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


class UtcDayTimetable(CronDataIntervalTimetable):
    """Daily at 00:00 UTC; each run processes one UTC day, named by its logical date."""

    def __init__(self) -> None:
        super().__init__("0 0 * * *", timezone="UTC")
        self.description = "At 00:00 UTC, for the UTC day that just ended"

    @property
    def summary(self) -> str:
        return "daily, for the previous UTC day"

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> UtcDayTimetable:
        return cls()

    def serialize(self) -> dict[str, Any]:
        return {}

    def infer_manual_data_interval(self, *, run_after: DateTime) -> DataInterval:
        # Airflow passes the run's *logical date* here (the trigger form's Logical Date).
        start = day_start(manual_day(run_after, now=pendulum.now("UTC")))
        return DataInterval(start=start, end=start + ONE_DAY)

    def generate_run_id(
        self,
        *,
        run_type: DagRunType,
        run_after: DateTime,
        data_interval: DataInterval | None,
        **extra: Any,
    ) -> str:
        if data_interval is None:
            return super().generate_run_id(
                run_type=run_type, run_after=run_after, data_interval=data_interval, **extra
            )
        return run_id(run_type, data_interval.start.astimezone(UTC).date(), triggered_at=run_after)
