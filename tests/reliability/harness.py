"""Run a day of ``learning_platform_etl`` task by task, as Airflow would, and measure its result.

``DayRun`` calls the DAG's task bodies (``include.learning_platform.tasks``) in the DAG's order
with Airflow's retry semantics: a task that raises is tried again, up to ``retries`` more
times (``publish_report`` none, as in the DAG), except for ``AirflowFailException``, which
fails it for good at once; ``publish_report``
and ``send_email`` still run after a failed quality gate or a failed publish, as their trigger
rule says. Configuration comes from ``AIRFLOW_CONN_*`` / ``AIRFLOW_VAR_*`` variables, as in a
deployment. ``Outcome`` compares what a run left behind with a clean run of the same day.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk.execution_time.context import OutletEventAccessors

from include.common.intervals import Interval
from include.learning_platform import tasks
from tests.include.learning_platform.stages import ATTEMPT_COLUMNS, DAG_TASKS

BODIES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "migrate_schema": tasks.migrate,
    "extract": tasks.extract,
    "validate": tasks.validate,
    "load": tasks.load,
    "compute_stats": tasks.compute_stats,
    "check_quality": tasks.check_quality,
    "publish_report": tasks.publish_report,
    "send_email": tasks.send_email,
}
# Their trigger rule (all_done_min_one_success) runs them after a failed gate or publish.
RUN_AFTER_FAILURE = {"check_quality", "publish_report"}
# Tasks the DAG never retries (retries=0): the email must not wait for publishing's retries.
NOT_RETRIED = {"publish_report"}


@dataclass
class TaskInstance:
    """The part of Airflow's task instance the task bodies use."""

    task_id: str
    xcoms: Mapping[str, Any]
    dag_id: str = "learning_platform_etl"

    def xcom_pull(self, task_ids: str) -> Any:
        return self.xcoms.get(task_ids)


@dataclass(frozen=True)
class DagRun:
    """The part of Airflow's DAG run the task bodies use."""

    run_id: str
    clear_number: int


@dataclass
class DayRun:
    """One DAG run for ``day``: the tries of each task and how each ended."""

    day: date
    run_id: str = "manual__reliability"
    clear_number: int = 0  # how often the run was cleared: a deliberate rerun of the same run
    retries: int = 3
    tries: Counter[str] = field(default_factory=Counter)
    states: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    xcoms: dict[str, Any] = field(default_factory=dict)
    outlet_events: OutletEventAccessors = field(default_factory=OutletEventAccessors)
    # Called with (task_id, try_number) before each try: where a test injects its fault.
    before_try: Callable[[str, int], None] = lambda task_id, try_number: None

    def run(self) -> DayRun:
        for task_id in DAG_TASKS:
            self.run_task(task_id)
            if self.states[task_id] != "success" and task_id not in RUN_AFTER_FAILURE:
                break
        return self

    def run_task(self, task_id: str) -> None:
        retries = 0 if task_id in NOT_RETRIED else self.retries
        for try_number in range(1, retries + 2):
            self.tries[task_id] += 1
            self.before_try(task_id, try_number)
            try:
                self.xcoms[task_id] = BODIES[task_id](self.context(task_id))
            except AirflowFailException as error:
                self._failed(task_id, error)
                return
            except Exception as error:
                self._failed(task_id, error)
                continue
            self.states[task_id] = "success"
            return

    def context(self, task_id: str) -> dict[str, Any]:
        return {
            "params": {"test_mode": False, "window_minutes": 60, "language": None},
            "run_id": self.run_id,
            "dag_run": DagRun(self.run_id, self.clear_number),
            "ti": TaskInstance(task_id, self.xcoms),
            # What the DAG's timetable gives a run of this day.
            "data_interval_start": Interval.for_day(self.day).start,
            "data_interval_end": Interval.for_day(self.day).end,
            # Airflow's own accessors: load announces the day's attempts through the asset alias.
            "outlet_events": self.outlet_events,
        }

    @property
    def succeeded(self) -> bool:
        return all(self.states.get(task_id) == "success" for task_id in DAG_TASKS)

    def behaviour(self) -> str:
        """What the run did, in a few words: the tries of each task that needed more than one."""
        retried = [f"{task_id} {count} tries" for task_id, count in self.tries.items() if count > 1]
        failed = [task_id for task_id, state in self.states.items() if state != "success"]
        parts = [", ".join(retried) or "no task retried"]
        if failed:
            parts.append("failed for good: " + ", ".join(failed))
        return "; ".join(parts)

    def _failed(self, task_id: str, error: BaseException) -> None:
        self.states[task_id] = "failed"
        self.errors[task_id] = f"{type(error).__name__}: {error}"


@dataclass(frozen=True)
class DayState:
    """What the warehouse, the sheet and the outbox hold for one day."""

    attempts: Counter[tuple]
    quarantine: Counter[tuple]
    stats: tuple | None
    sheet_rows: int | None
    emails: int

    @classmethod
    def read(cls, conninfo: str, day: date, *, outbox: Path, sheet_rows: int | None = None) -> DayState:
        # The UTC day's bounds as instants: a date compared with timestamptz would be read in the
        # session's TimeZone.
        interval = Interval.for_day(day)
        with psycopg.connect(conninfo) as conn:
            attempts = conn.execute(
                f"SELECT {ATTEMPT_COLUMNS} FROM learning_platform.attempts "
                "WHERE source_window_start >= %s AND source_window_start < %s",
                (interval.start, interval.end),
            ).fetchall()
            quarantine = conn.execute(
                "SELECT source_window_start, source_position, record, reasons "
                "FROM learning_platform.quarantined_attempts "
                "WHERE source_window_start >= %s AND source_window_start < %s",
                (interval.start, interval.end),
            ).fetchall()
            stats = conn.execute(
                "SELECT fetched, loaded, quarantined, unique_users, runs, submits, successful_submits "
                "FROM learning_platform.daily_stats WHERE stats_date = %s",
                (day,),
            ).fetchone()
        emails = sum(1 for path in outbox.glob("*.eml") if day.isoformat() in _subject(path))
        return cls(
            Counter(map(_hashable, attempts)), Counter(map(_hashable, quarantine)), stats, sheet_rows, emails
        )


@dataclass(frozen=True)
class Outcome:
    """A faulted run's result against a clean run of the same day."""

    rows_lost: int
    rows_doubled: int
    stats_equal: bool
    emails: int

    @classmethod
    def compare(cls, clean: DayState, faulted: DayState) -> Outcome:
        lost = (clean.attempts - faulted.attempts) + (clean.quarantine - faulted.quarantine)
        extra = (faulted.attempts - clean.attempts) + (faulted.quarantine - clean.quarantine)
        return cls(sum(lost.values()), sum(extra.values()), clean.stats == faulted.stats, faulted.emails)


def _hashable(row: tuple) -> tuple:
    return tuple(
        json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value for value in row
    )


def _subject(path: Path) -> str:
    for line in path.read_text(errors="replace").splitlines():
        if line.lower().startswith("subject:"):
            return line
    return ""
