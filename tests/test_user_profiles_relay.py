"""``user_profiles_relay`` as Airflow parses it: the form's params, the wiring, the three stages at once.

The shared checks (documented, tagged, retried, alerting, parsed without I/O, the watcher) are in
``tests/dags/test_dag_integrity.py``; here what this DAG promises on top of them.
"""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path

import pytest
from airflow.sdk.exceptions import ParamValidationError

DAG_FILE = Path(__file__).resolve().parents[1] / "dags" / "user_profiles_relay.py"
STAGES = {"generate", "process", "send"}


class IOAttempted(AssertionError):
    pass


@pytest.fixture(scope="module")
def dag(airflow_home: Path, monkeypatch_module: pytest.MonkeyPatch):
    """The DAG, parsed with every connection, variable and socket lookup forbidden."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import BaseHook, Connection, Variable

    def forbidden(*args: object, **kwargs: object) -> None:
        raise IOAttempted(f"I/O while parsing: {args!r}")

    monkeypatch_module.setattr(Connection, "get", classmethod(forbidden))
    monkeypatch_module.setattr(BaseHook, "get_connection", classmethod(forbidden))
    monkeypatch_module.setattr(Variable, "get", staticmethod(forbidden))
    monkeypatch_module.setattr(socket.socket, "connect", forbidden)
    bag = DagBag(dag_folder=str(DAG_FILE), safe_mode=False)
    assert bag.import_errors == {}
    return bag.dags["user_profiles_relay"]


def validated(dag, **conf) -> dict:
    """The params of a run triggered with ``conf``, validated as Airflow does when it creates the
    run (whether from the form, the CLI or the API): on the DAG as the scheduler knows it."""
    from airflow.serialization.serialized_objects import DagSerialization

    serialized = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    return serialized.params.deep_merge(conf).validate()


def test_the_form_offers_the_issues_params(dag) -> None:
    assert set(dag.params) == {
        "count",
        "interval_seconds",
        "age_min",
        "age_max",
        "locale",
        "batch_size",
        "connection",
        "receiver",
    }
    for name, param in dag.params.items():
        assert param.schema.get("title"), name


def test_count_is_required_and_everything_else_may_stay_empty(dag) -> None:
    count = dag.params.get_param("count")
    assert count.schema == {
        "type": "integer",
        "minimum": 1,
        "maximum": 1_000_000,
        "title": "Profiles to generate",
    }
    assert count.description.startswith("Required")
    assert not count.has_value
    for name in set(dag.params) - {"count"}:
        assert "null" in dag.params.get_param(name).schema["type"], name
        assert dag.params[name] is None, name


def test_a_run_without_a_count_is_refused(dag) -> None:
    with pytest.raises(ParamValidationError, match="count"):
        validated(dag)


@pytest.mark.parametrize("count", [0, -1, 1_000_001, "3000", 2.5, None])
def test_a_run_with_a_count_that_is_no_positive_whole_number_is_refused(dag, count) -> None:
    with pytest.raises(ParamValidationError, match="count"):
        validated(dag, count=count)


def test_a_run_with_a_count_is_accepted_with_empty_settings(dag) -> None:
    assert validated(dag, count=3000) == {
        "count": 3000,
        "interval_seconds": None,
        "age_min": None,
        "age_max": None,
        "locale": None,
        "batch_size": None,
        "connection": None,
        "receiver": None,
    }


@pytest.mark.parametrize(
    "conf", [{"interval_seconds": -0.5}, {"age_min": -1}, {"age_max": 101}, {"batch_size": 1001}]
)
def test_the_form_refuses_settings_out_of_bounds(dag, conf: dict) -> None:
    with pytest.raises(ParamValidationError):
        validated(dag, count=10, **conf)


def test_the_three_stages_hang_off_prepare_only_so_they_run_at_the_same_time(dag) -> None:
    assert dag.get_task("prepare").upstream_task_ids == set()
    for stage in STAGES:
        assert dag.get_task(stage).upstream_task_ids == {"prepare"}, stage
    assert dag.get_task("summarize").upstream_task_ids == STAGES
    assert dag.get_task("summarize").trigger_rule == "all_success"


def test_a_failed_task_fails_the_run_through_the_watcher(dag) -> None:
    watcher = dag.get_task("mark_run_failed")
    assert watcher.upstream_task_ids == {"prepare", "summarize", *STAGES}
    assert watcher.trigger_rule == "one_failed"
    assert [task.task_id for task in dag.leaves] == ["mark_run_failed"]


def test_the_stages_may_run_a_day_and_start_in_the_order_that_can_finish(dag) -> None:
    weights = {stage: dag.get_task(stage).priority_weight for stage in STAGES}
    for stage in STAGES:
        assert dag.get_task(stage).execution_timeout == timedelta(hours=24), stage
    # With fewer free slots than three, generate starts first and send last: each can finish.
    assert weights["generate"] > weights["process"] > weights["send"]


def test_no_task_takes_another_tasks_output_profiles_go_through_the_store(dag) -> None:
    from airflow.sdk.definitions.xcom_arg import XComArg

    for task in dag.tasks:
        arguments = [*getattr(task, "op_args", []), *getattr(task, "op_kwargs", {}).values()]
        assert not any(isinstance(argument, XComArg) for argument in arguments), task.task_id


def test_it_runs_only_when_triggered_and_a_few_runs_at_once(dag) -> None:
    assert dag.timetable.__class__.__name__ == "NullTimetable"
    assert dag.max_active_runs == 3
    assert dag.catchup is False


def test_the_doc_describes_every_task_and_param(dag) -> None:
    for name in [*dag.task_ids, *dag.params]:
        assert f"`{name}`" in dag.doc_md, name
