"""Under UtcDayTimetable a run's logical date is the UTC day it processes, however it starts."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from types import SimpleNamespace

import pendulum
import pytest
from airflow.models.dagrun import DagRun
from airflow.timetables.base import DataInterval, TimeRestriction
from airflow.utils.types import DagRunType

from include.common import run_notes
from include.common.timetables import UtcDayTimetable, manual_day, run_id

NOV_1 = pendulum.datetime(2026, 11, 1, tz="UTC")
NOW = datetime(2026, 12, 6, 3, 51, 51, 123456, tzinfo=UTC)


def day(start: datetime) -> DataInterval:
    return DataInterval(start, start.add(days=1))


# --- scheduled runs ---------------------------------------------------------------------------


def test_the_run_starting_at_midnight_processes_the_day_that_just_ended() -> None:
    timetable = UtcDayTimetable()
    restriction = TimeRestriction(earliest=NOV_1, latest=None, catchup=True)

    first = timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    second = timetable.next_dagrun_info(
        last_automated_data_interval=first.data_interval, restriction=restriction
    )

    assert first.data_interval == day(NOV_1)
    assert first.logical_date == NOV_1
    assert first.run_after == NOV_1.add(days=1)
    assert second.logical_date == NOV_1.add(days=1)
    assert second.run_after == NOV_1.add(days=2)


def test_a_scheduled_run_id_names_the_day_processed_not_the_day_it_ran() -> None:
    run = UtcDayTimetable().generate_run_id(
        run_type=DagRunType.SCHEDULED, run_after=NOV_1.add(days=1), data_interval=day(NOV_1)
    )
    assert run == "scheduled__2026-11-01"


# --- manual runs ------------------------------------------------------------------------------


def test_a_manual_run_processes_the_utc_day_of_its_logical_date() -> None:
    # Any time of the day picks the day: the form keeps the current time when a date is picked.
    assert manual_day(datetime(2026, 11, 15, 3, 51, tzinfo=UTC), now=NOW) == date(2026, 11, 15)
    assert manual_day(datetime(2026, 11, 15, 23, 59, 59, tzinfo=UTC), now=NOW) == date(2026, 11, 15)
    # The day is the UTC one, whatever the time zone the date was given in.
    assert manual_day(pendulum.datetime(2026, 11, 16, 1, tz="Europe/Moscow"), now=NOW) == date(2026, 11, 15)


def test_a_manual_run_gets_its_day_as_data_interval() -> None:
    # Long past, so the answer does not depend on today's date.
    interval = UtcDayTimetable().infer_manual_data_interval(
        run_after=pendulum.datetime(2020, 2, 29, 17, tz="UTC")
    )
    assert interval == day(pendulum.datetime(2020, 2, 29, tz="UTC"))


def test_a_manual_run_triggered_now_processes_the_last_complete_day() -> None:
    assert manual_day(NOW, now=NOW) == date(2026, 12, 5)
    # At midnight the day that just ended is complete, and today has not begun to be.
    midnight = datetime(2026, 12, 6, tzinfo=UTC)
    assert manual_day(midnight, now=midnight) == date(2026, 12, 5)


def test_a_manual_run_triggered_now_with_real_time_never_processes_today() -> None:
    interval = UtcDayTimetable().infer_manual_data_interval(run_after=pendulum.now("UTC"))
    # Whenever this runs: the day processed has ended (which day exactly: the test above).
    assert interval.end <= pendulum.now("UTC")


def test_a_day_that_has_not_ended_cannot_be_chosen() -> None:
    with pytest.raises(ValueError, match=r"has not ended: choose a day up to 2026-12-05"):
        manual_day(datetime(2026, 12, 7, tzinfo=UTC), now=NOW)


def test_manual_run_ids_name_the_day_then_the_trigger_time() -> None:
    run = UtcDayTimetable().generate_run_id(
        run_type=DagRunType.MANUAL,
        run_after=pendulum.instance(NOW),
        data_interval=day(pendulum.datetime(2026, 11, 15, tz="UTC")),
    )
    assert run == "manual__2026-11-15__at_2026-12-06T03:51:51Z"


def test_run_ids_are_valid_airflow_run_ids() -> None:
    from airflow.configuration import conf

    pattern = re.compile(conf.get("scheduler", "allowed_run_id_pattern"))
    for kind in DagRunType:
        assert pattern.match(run_id(kind, date(2026, 11, 15), triggered_at=NOW)), kind


# --- backfills, through the DAG as the scheduler stores it -------------------------------------


@pytest.fixture(scope="module")
def serialized_dag(airflow_home):
    """learning_platform_etl round-tripped through Airflow's serialization, which only accepts
    the custom timetable because the project's plugin registers it."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    from tests.dags.test_dag_integrity import DAGS_FOLDER

    dag = DagBag(dag_folder=str(DAGS_FOLDER / "learning_platform_etl.py"), safe_mode=False).dags[
        "learning_platform_etl"
    ]
    return DagSerialization.from_dict(DagSerialization.to_dict(dag))


def test_the_stored_dag_keeps_the_day_timetable(serialized_dag) -> None:
    assert isinstance(serialized_dag.timetable, UtcDayTimetable)


def test_a_backfill_from_one_day_to_another_runs_each_day_under_its_own_logical_date(serialized_dag) -> None:
    from airflow.models.backfill import _get_info_list

    # Airflow's own planning of a backfill (it leaves out days not over yet: these are long past).
    infos = _get_info_list(
        from_date=pendulum.datetime(2020, 3, 1, tz="UTC"),
        to_date=pendulum.datetime(2020, 3, 3, tz="UTC"),
        reverse=False,
        dag=serialized_dag,
    )

    assert [info.logical_date.date() for info in infos] == [
        date(2020, 3, 1),
        date(2020, 3, 2),
        date(2020, 3, 3),
    ]
    assert all(info.data_interval == day(info.logical_date) for info in infos)


# --- the note every run gets ------------------------------------------------------------------


def started_run(conf: dict | None, *, note: str | None = None) -> DagRun:
    run = DagRun(
        dag_id="learning_platform_etl",
        run_id="manual__2026-11-15__at_2026-12-06T03:51:51Z",
        logical_date=pendulum.datetime(2026, 11, 15, 3, tz="UTC"),
        data_interval=day(pendulum.datetime(2026, 11, 15, tz="UTC")),
        run_type=DagRunType.MANUAL,
        conf=conf,
    )
    if note is not None:
        run.note = note
    # The scheduler attaches the serialized DAG before it calls listeners.
    run.dag = SimpleNamespace(timetable=UtcDayTimetable())
    return run


def test_a_started_run_is_noted_with_its_day() -> None:
    run = started_run({"test_mode": False})
    run_notes.on_dag_run_running(dag_run=run, msg="started")
    assert run.note == "Processes UTC day **2026-11-15** · full day"


def test_a_test_mode_run_says_so_in_its_note_above_the_note_its_trigger_wrote() -> None:
    run = started_run({"test_mode": True}, note="checking the new API key")
    run_notes.on_dag_run_running(dag_run=run, msg="started")
    assert run.note == "Processes UTC day **2026-11-15** · **TEST MODE**\n\nchecking the new API key"

    # A cleared run starts again: the label is not repeated.
    run_notes.on_dag_run_running(dag_run=run, msg="started")
    assert run.note.count("TEST MODE") == 1


def test_runs_of_other_timetables_are_left_alone() -> None:
    run = started_run({"test_mode": True})
    run.dag = SimpleNamespace(timetable=object())
    run_notes.on_dag_run_running(dag_run=run, msg="started")
    assert run.note is None
