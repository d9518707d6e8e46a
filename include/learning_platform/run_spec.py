"""What one task of ``learning_platform_etl`` is asked to do: the day it owns and the run's choices.

Airflow hands a task its DAG run (data interval, run id, clear number) and the trigger form's
params. :meth:`RunSpec.from_airflow` reads them, once per task, into a plain value; the task
bodies in ``include.learning_platform.tasks`` take that value as an argument, so they read like
function calls and tests build a ``RunSpec`` directly instead of imitating Airflow's objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from include.common.failures import ConfigurationError, no_retry_on_permanent_failure
from include.common.intervals import Interval, resolve_interval

if TYPE_CHECKING:
    from airflow.sdk.types import DagRunProtocol

DEFAULT_WINDOW = timedelta(minutes=60)


@dataclass(frozen=True, slots=True)
class RunSpec:
    """One task's run: the interval it owns and what was chosen when the run was triggered."""

    interval: Interval
    run_id: str
    # How often the run was cleared: a cleared run is a deliberate rerun, which mails again.
    clear_number: int = 0
    test_mode: bool = False
    window: timedelta = DEFAULT_WINDOW
    # The trigger form's report language; None leaves it to the operator's setting.
    language: str | None = None
    # The database sessions' application_name, so pg_stat_activity shows which task holds a lock.
    session_name: str = "learning_platform_etl"

    @classmethod
    @no_retry_on_permanent_failure
    def from_airflow(cls, params: Mapping[str, Any], dag_run: DagRunProtocol, *, task_id: str) -> RunSpec:
        """The spec of a task of ``dag_run``, as TaskFlow injects the run and its params.

        Called by the DAG's tasks before their bodies, so it fails its task at once (no retries)
        itself when the run cannot be processed as triggered: retrying would read the same run.
        """
        if params.get("date"):
            # The 'date' param was retired: a run whose conf still names a day would show one day
            # in the UI and (before) process another. Refuse instead of ignoring the caller's choice.
            raise ConfigurationError(
                f"the 'date' parameter ({params['date']!r}) is no longer read: a run processes the "
                "UTC day of its logical date. Trigger it with that day as the logical date (trigger "
                "form: Logical Date; CLI: airflow dags trigger --logical-date YYYY-MM-DD) and "
                "without 'date'"
            )
        test_mode = bool(params.get("test_mode"))
        minutes = params.get("window_minutes")
        return cls(
            interval=resolve_interval(
                data_interval_start=dag_run.data_interval_start,
                data_interval_end=dag_run.data_interval_end,
                test_mode=test_mode,
            ),
            run_id=dag_run.run_id,
            clear_number=dag_run.clear_number or 0,
            test_mode=test_mode,
            # An emptied trigger-form field means the default.
            window=DEFAULT_WINDOW if minutes is None else timedelta(minutes=int(minutes)),
            language=params.get("language") or None,
            session_name=f"{dag_run.dag_id}.{task_id}",
        )
