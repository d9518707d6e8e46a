"""The fault table's row for landing retention: its worker killed mid-way, then the task run again.

Days are run with the real stages (harness.DayRun); ``airflow_maintenance``'s ``drop_old_landing``
runs in a process of its own, is SIGKILLed while it waits for a day it is about to drop, and
then runs again as Airflow's retry would. What the published days hold (attempts, quarantine,
figures) is compared before and after.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, date, datetime
from typing import Any

import psycopg
import pytest

from devservices.environment import PROJECT_ROOT
from include.common.intervals import Interval
from include.learning_platform.partitions import day_partitions
from include.learning_platform.warehouse import lock_day
from include.maintenance import tasks
from include.maintenance.retention import retention_cutoff
from tests.reliability.conftest import Deployment, smtp
from tests.reliability.harness import DayRun, Outcome
from tests.reliability.test_faults import assert_clean, record, wait_until_blocked

pytestmark = pytest.mark.timeout(300)

# The maintenance run's data interval ends 2026-11-20 03:00: with 14 days, 2026-11-06 on is kept.
RUN_END = datetime(2026, 11, 20, 3, tzinfo=UTC)
DROPPED_FIRST, KILLED_ON = date(2026, 10, 30), date(2026, 10, 31)  # old and published
UNPUBLISHED = date(2026, 11, 1)  # old, landed and validated, never loaded
RECENT = date(2026, 11, 16)  # published, within the retention period

# The task body in a process of its own, waiting as long as it takes for a day's lock.
KILLED_TASK = """
from include.learning_platform import landing_retention
from tests.reliability.test_landing_retention_faults import drop_old_landing

landing_retention.LOCK_TIMEOUT = "10min"
drop_old_landing()
"""


def drop_old_landing() -> dict[str, Any]:
    """The task body as the run ending at RUN_END calls it, with the default retention of 14 days."""
    oldest_kept_day = retention_cutoff(RUN_END, 14).date()
    return tasks.drop_old_landing(
        oldest_kept_day, dry_run=False, session_name="airflow_maintenance.drop_old_landing"
    )


def landed_days(conninfo: str) -> list[date]:
    with psycopg.connect(conninfo) as conn, conn.cursor() as cursor:
        return sorted(day_partitions(cursor))


def test_retention_killed_mid_way_then_run_again_drops_only_old_published_days(
    deployment: Deployment, fault_table
) -> None:
    with smtp(deployment):
        for day in (DROPPED_FIRST, KILLED_ON, RECENT):
            run = deployment.run(day)
            assert run.succeeded, run.errors
        unpublished = DayRun(UNPUBLISHED)
        for task_id in ("migrate_schema", "extract", "validate"):
            unpublished.run_task(task_id)
    published = {day: deployment.state(day) for day in (DROPPED_FIRST, KILLED_ON, RECENT)}

    # A run of KILLED_ON holds its day: the task drops DROPPED_FIRST, then waits there.
    with psycopg.connect(deployment.conninfo) as run_of_the_day, run_of_the_day.cursor() as cursor:
        lock_day(cursor, Interval.for_day(KILLED_ON))
        worker = subprocess.Popen(
            [sys.executable, "-c", KILLED_TASK], cwd=PROJECT_ROOT, env=os.environ.copy()
        )
        wait_until_blocked(deployment.conninfo)
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(30) == -signal.SIGKILL
    after_kill = landed_days(deployment.conninfo)

    summary = drop_old_landing()

    assert after_kill == [KILLED_ON, UNPUBLISHED, RECENT]
    assert summary["days"] == 1
    assert summary["first_day"] == KILLED_ON.isoformat()
    assert summary["unpublished_days"] == [UNPUBLISHED.isoformat()]
    assert landed_days(deployment.conninfo) == [UNPUBLISHED, RECENT]
    outcomes = {day: Outcome.compare(state, deployment.state(day)) for day, state in published.items()}
    record(
        fault_table,
        fault="landing retention killed mid-way (SIGKILL)",
        injection="drop_old_landing's process killed with SIGKILL after dropping one old day, while it "
        "waited for the next day's lock",
        behaviour="the day it had dropped stayed dropped, the day it was on rolled back whole; run again, "
        "it dropped the remaining old published day and kept the old unpublished day and the recent "
        "one; attempts, quarantine and figures of every day unchanged",
        outcome=outcomes[KILLED_ON],
    )
    for outcome in outcomes.values():
        assert_clean(outcome)
