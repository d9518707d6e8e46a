"""A run that had a failed task shows as failed, even when the tasks after it succeeded.

Airflow sets a run's state from its leaf tasks. A DAG whose last tasks run after a failure on
purpose (the report goes out, marked, when the quality gate fails) would end green. The fix
is Airflow's own "watcher" (as in its system tests): a last task downstream of every other
task, with trigger rule ``one_failed``, that fails whenever another task failed and is skipped
otherwise. It sends no alert and is never retried: the failed task has already alerted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

from airflow.sdk import TriggerRule, task

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, TaskInstance


def fail_the_run(ti: TaskInstance) -> NoReturn:
    """The watcher's body: fail, naming the tasks of its run that failed before it."""
    from airflow.sdk.exceptions import AirflowFailException

    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
    failed = sorted(task_id for task_id, state in states.items() if state == "failed")
    raise AirflowFailException(
        f"the run failed because {', '.join(failed) or 'an earlier task'} failed (its alert was "
        "sent); this task only marks the run as failed. Once the cause is fixed, clear the failed "
        "task with its downstream tasks"
    )


def mark_run_failed() -> BaseOperator:
    """The watcher task of a DAG: wire it downstream of every other task (``tasks >> mark_run_failed()``).

    Never retried, and no alert of its own: the task that failed has sent it.
    """

    @task(task_id="mark_run_failed", trigger_rule=TriggerRule.ONE_FAILED, retries=0, on_failure_callback=None)
    def watcher(ti: TaskInstance) -> None:
        fail_the_run(ti)

    return watcher().operator
