"""Every run of a day-timetabled DAG carries a note naming its UTC day and test mode.

A run id and a logical date can say which day a run processes, but not whether it ran in test
mode: that choice sits in the run's conf, which Airflow's UI shows collapsed, and backfill run
ids (named by Airflow after the end of the day) name the wrong day. A DAG run note is Airflow's
own per-run text: the run page shows it, the runs list marks the runs that have one, and the
REST API returns it (``note``). This listener writes it when the scheduler starts a run, so
every trigger path (the form, the REST API, the CLI, a backfill, the schedule) gets the same
label, and a note the person who triggered the run wrote is kept below it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from airflow.listeners import hookimpl

from include.common.timetables import UtcDayTimetable

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun


def day_label(day_start: datetime, *, test_mode: bool) -> str:
    """One line, in Markdown as the UI renders notes: the day first, then the mode."""
    day = day_start.astimezone(UTC).date().isoformat()
    mode = "**TEST MODE**" if test_mode else "full day"
    return f"Processes UTC day **{day}** · {mode}"


def labelled(note: str | None, label: str) -> str:
    """``note`` with ``label`` on top; unchanged when it already has it (a cleared run restarts)."""
    if not note or not note.strip():
        return label
    if note.startswith(label):
        return note
    return f"{label}\n\n{note}"


@hookimpl
def on_dag_run_running(dag_run: DagRun, msg: str) -> None:
    # The scheduler hands over the run with its serialized DAG attached, inside the session it
    # commits once the run has started: the note is stored with the state change.
    dag = getattr(dag_run, "dag", None)
    if dag is None or not isinstance(dag.timetable, UtcDayTimetable) or dag_run.data_interval_start is None:
        return
    test_mode = (dag_run.conf or {}).get("test_mode") is True
    note = labelled(dag_run.note, day_label(dag_run.data_interval_start, test_mode=test_mode))
    if note != dag_run.note:
        dag_run.note = note
