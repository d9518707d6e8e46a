"""Run a day of ``learning_platform_etl`` task by task, as Airflow would, and measure its result.

``DayRun`` calls the DAG's task bodies (``include.learning_platform.tasks``) in the DAG's order,
each with the ``RunSpec`` its task would read from Airflow, with Airflow's retry semantics: a
task that raises is tried again, up to ``retries`` more times (``publish_report`` none, as in
the DAG), except for ``AirflowFailException``, which fails it for good at once;
``publish_report`` and ``send_email`` still run after a failed quality gate or a failed
publish, as their trigger rule says. Configuration comes from ``AIRFLOW_CONN_*`` /
``AIRFLOW_VAR_*`` variables, as in a deployment. ``Outcome`` compares what a run left behind
with a clean run of the same day.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

import psycopg
from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk.execution_time.context import OutletEventAccessors

from include.common.intervals import Interval
from include.learning_platform import tasks
from include.learning_platform.run_spec import RunSpec
from tests.include.learning_platform.stages import ATTEMPT_COLUMNS, DAG_TASKS

# The bodies that take nothing but their RunSpec; see call_body for the others.
BODIES: dict[str, Callable[[RunSpec], Any]] = {
    "migrate_schema": tasks.migrate,
    "extract": tasks.extract,
    "validate": tasks.validate,
    "compute_stats": tasks.compute_stats,
    "check_quality": tasks.check_quality,
    "publish_report": tasks.publish_report,
}
# Their trigger rule (all_done_min_one_success) runs them after a failed gate or publish.
RUN_AFTER_FAILURE = {"check_quality", "publish_report"}
# How failure alerts' subjects start (include/common/alerts.py).
ALERT_SUBJECT = "[Airflow alert]"
# Tasks the DAG never retries (retries=0): the email must not wait for publishing's retries.
NOT_RETRIED = {"publish_report"}


def call_body(
    task_id: str, run: RunSpec, *, returned: Mapping[str, Any], outlet_events: OutletEventAccessors
) -> Any:
    """Call a task's body with what the DAG's task passes it: ``returned`` holds the return values
    of the run's tasks so far, ``outlet_events`` Airflow's own accessors for load's asset event."""
    if task_id == "load":
        return tasks.load(run, outlet_events)
    if task_id == "send_email":
        # publish_report's return value; none after a failed publish, which Airflow passes as None.
        return tasks.send_email(run, returned.get("publish_report"))
    return BODIES[task_id](run)


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
                self.xcoms[task_id] = call_body(
                    task_id, self.spec(task_id), returned=self.xcoms, outlet_events=self.outlet_events
                )
            except AirflowFailException as error:
                self._failed(task_id, error)
                return
            except Exception as error:
                self._failed(task_id, error)
                continue
            self.states[task_id] = "success"
            return

    def spec(self, task_id: str) -> RunSpec:
        """What the DAG's task reads from Airflow for a run of this day (see RunSpec.from_airflow)."""
        return RunSpec(
            Interval.for_day(self.day),
            run_id=self.run_id,
            clear_number=self.clear_number,
            session_name=f"learning_platform_etl.{task_id}",
        )

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


def run_task_in_worker(day: date, task_id: str, xcoms: dict[str, Any]) -> None:
    """``task_id`` of ``day``'s run in this process, given the earlier tasks' return values.

    A worker's (``tests.reliability.workers.Worker``), for a test to kill.
    """
    DayRun(day, xcoms=dict(xcoms)).run_task(task_id)


@dataclass(frozen=True)
class DayState:
    """What the warehouse, the sheet and the outbox (report emails) hold for one day."""

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
        # Report emails only: a failure alert names the day too (in its run id), and is counted apart.
        emails = sum(
            1
            for path in outbox.glob("*.eml")
            if day.isoformat() in _subject(path) and not _subject(path).startswith(ALERT_SUBJECT)
        )
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
    # Parsed, not grepped: a long subject (an alert's) is folded over several header lines.
    headers = BytesHeaderParser(policy=policy.default).parsebytes(path.read_bytes())
    return str(headers["Subject"] or "")
