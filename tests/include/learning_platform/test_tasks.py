"""What a task reads from Airflow (its DAG run and the trigger form's params) into its RunSpec,
and what load announces to other DAGs through Airflow's own outlet event accessors.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk.execution_time.context import OutletEventAccessors

from devservices.environment import postgres_connection_json
from include.common.intervals import Interval
from include.learning_platform import tasks
from include.learning_platform.assets import ATTEMPTS, ATTEMPTS_LOADS
from include.learning_platform.run_spec import RunSpec
from include.learning_platform.warehouse import DB_CONN_ID, TEST_DB_CONN_ID
from tests.include.learning_platform.stages import DAY, run_stages

FORM_DEFAULTS = {"test_mode": False, "window_minutes": 60, "language": None}


@dataclass(frozen=True)
class DagRun:
    """The fields of Airflow's DAG run (``DagRunProtocol``) a RunSpec is read from."""

    dag_id: str = "learning_platform_etl"
    run_id: str = "scheduled__2026-11-22T00:00:00+00:00"
    data_interval_start: datetime | None = DAY.start
    data_interval_end: datetime | None = DAY.end
    clear_number: int | None = 0


def spec(dag_run: DagRun = DagRun(), **params: object) -> RunSpec:
    return RunSpec.from_airflow(FORM_DEFAULTS | params, dag_run, task_id="extract")


def test_a_run_owns_the_day_of_its_data_interval() -> None:
    assert spec() == RunSpec(
        DAY,
        run_id="scheduled__2026-11-22T00:00:00+00:00",
        window=timedelta(hours=1),
        session_name="learning_platform_etl.extract",
    )


def test_a_test_mode_run_owns_the_first_hour_of_its_day() -> None:
    run = spec(test_mode=True)

    assert run.test_mode
    assert run.interval == Interval(DAY.start, DAY.start + timedelta(hours=1))


def test_a_run_without_a_data_interval_is_refused_at_once_saying_how_to_trigger_it() -> None:
    with pytest.raises(AirflowFailException, match="trigger it again with the logical date set"):
        spec(DagRun(data_interval_start=None, data_interval_end=None))


def test_a_conf_still_naming_a_date_is_refused_at_once_rather_than_ignored() -> None:
    with pytest.raises(AirflowFailException, match="--logical-date"):
        spec(date="2026-03-01")


@pytest.mark.parametrize(("minutes", "window"), [(15, timedelta(minutes=15)), (None, timedelta(hours=1))])
def test_an_emptied_fetch_window_means_the_default(minutes: int | None, window: timedelta) -> None:
    assert spec(window_minutes=minutes).window == window


@pytest.mark.parametrize(("chosen", "language"), [("ru", "ru"), (None, None), ("", None)])
def test_a_language_left_empty_is_left_to_the_operators_setting(
    chosen: str | None, language: str | None
) -> None:
    assert spec(language=chosen).language == language


def test_a_cleared_run_carries_its_clear_number_and_a_run_never_cleared_zero() -> None:
    assert spec(DagRun(clear_number=2)).clear_number == 2
    assert spec(DagRun(clear_number=None)).clear_number == 0


def define_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, conninfo: str) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", postgres_connection_json(conninfo))


def test_a_days_load_announces_the_attempts_asset_with_the_day_and_count(
    airflow_home, warehouse, warehouse_conninfo, simulator, api_client, monkeypatch
) -> None:
    define_connection(monkeypatch, DB_CONN_ID, warehouse_conninfo)
    run_stages(warehouse, api_client, DAY)
    events = OutletEventAccessors()

    loaded = tasks.load(RunSpec(DAY, run_id="manual__load"), events)

    [event] = events[ATTEMPTS_LOADS].asset_alias_events
    assert event.dest_asset_key.name == ATTEMPTS.name
    assert event.extra == {"day": DAY.day.isoformat(), "loaded": loaded["loaded"]}
    assert loaded["loaded"] > 0


def test_a_test_mode_load_announces_nothing(
    airflow_home, warehouse, warehouse_conninfo, simulator, api_client, monkeypatch
) -> None:
    """A test-mode run loads the scratch warehouse: DAGs scheduled on the real table must not run."""
    define_connection(monkeypatch, TEST_DB_CONN_ID, warehouse_conninfo)
    monkeypatch.delenv(f"AIRFLOW_CONN_{DB_CONN_ID.upper()}", raising=False)
    first_hour = Interval(DAY.start, DAY.start + timedelta(hours=1))
    run_stages(warehouse, api_client, first_hour)
    events = OutletEventAccessors()

    loaded = tasks.load(RunSpec(first_hour, run_id="manual__load", test_mode=True), events)

    assert loaded["loaded"] > 0, "precondition: the scratch warehouse was loaded"
    assert events[ATTEMPTS_LOADS].asset_alias_events == []
