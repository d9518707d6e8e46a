"""Every DAG in dags/ imports cleanly, cheaply, without I/O, and follows the house rules."""

from __future__ import annotations

import itertools
import socket
import time
from pathlib import Path

import pytest
from airflow.sdk import Asset

from include.common.alerts import FailureAlert
from include.common.tags import DAG_TAGS
from include.learning_platform.assets import ATTEMPTS
from include.usage_ingest.assets import CONSUMER_TOTALS

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(DAGS_FOLDER.glob("*.py"))
PARSE_BUDGET_S = 2.0
# Tasks that are never retried on purpose (each DAG file says why): the report email must not
# wait for publishing's retries, and a watcher only marks its run failed.
# DAGs whose runs end failed whenever a task failed, through a watcher task "mark_run_failed".
WATCHED_DAGS = ("learning_platform_etl", "csv_folder_import", "usage_files_ingest", "user_profiles_relay")
NOT_RETRIED = {("learning_platform_etl", "publish_report")} | {
    (dag, "mark_run_failed") for dag in WATCHED_DAGS
}
# The watcher's failure repeats another task's, which has sent the alert.
NO_ALERT = {(dag, "mark_run_failed") for dag in WATCHED_DAGS}


# A run of csv_column_sums is one REST request, a single short task: requests run side by side.
MAX_ACTIVE_RUNS = {"csv_column_sums": 16}


# The fixed assets DAGs emit through an alias (so that some runs emit none), each by its DAG.
ALIASED_ASSETS = {"learning_platform_etl": ATTEMPTS, "usage_files_ingest": CONSUMER_TOTALS}


class IOAttempted(AssertionError):
    pass


@pytest.fixture(scope="module")
def dag_bag(airflow_home: Path, monkeypatch_module: pytest.MonkeyPatch):
    """Parse the dags folder with every connection, variable and socket lookup forbidden."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import BaseHook, Connection, Variable

    def forbidden(*args: object, **kwargs: object) -> None:
        raise IOAttempted(f"I/O while parsing DAGs: {args!r}")

    monkeypatch_module.setattr(Connection, "get", classmethod(forbidden))
    monkeypatch_module.setattr(BaseHook, "get_connection", classmethod(forbidden))
    monkeypatch_module.setattr(Variable, "get", staticmethod(forbidden))
    monkeypatch_module.setattr(socket.socket, "connect", forbidden)
    started = time.perf_counter()
    bag = DagBag(dag_folder=str(DAGS_FOLDER), safe_mode=False)
    bag.parse_seconds = time.perf_counter() - started
    return bag


def test_every_dag_file_imports_without_errors(dag_bag) -> None:
    assert dag_bag.import_errors == {}
    assert {Path(dag.fileloc).stem for dag in dag_bag.dags.values()} == {p.stem for p in DAG_FILES}


def test_parsing_is_within_budget(dag_bag) -> None:
    per_file = dag_bag.parse_seconds / max(len(DAG_FILES), 1)
    assert per_file < PARSE_BUDGET_S, f"{per_file:.2f} s per DAG file"


def dags(dag_bag):
    return sorted(dag_bag.dags.values(), key=lambda d: d.dag_id)


def test_dag_id_is_the_file_name(dag_bag) -> None:
    for dag in dags(dag_bag):
        assert dag.dag_id == Path(dag.fileloc).stem


def test_every_dag_is_documented_tagged_and_bounded(dag_bag) -> None:
    for dag in dags(dag_bag):
        assert len(dag.doc_md or "") > 200, dag.dag_id
        assert dag.tags, dag.dag_id
        assert set(dag.tags) <= DAG_TAGS, (dag.dag_id, dag.tags)
        assert dag.catchup is False, dag.dag_id
        assert 1 <= dag.max_active_runs <= MAX_ACTIVE_RUNS.get(dag.dag_id, 5), dag.dag_id
        assert str(dag.timezone) == "UTC", dag.dag_id
        for name, param in dag.params.items():
            assert param.description, f"{dag.dag_id}: param {name} has no description"


def test_every_task_has_an_owner_and_retries_with_backoff(dag_bag) -> None:
    for dag in dags(dag_bag):
        for task in dag.tasks:
            where = f"{dag.dag_id}.{task.task_id}"
            assert task.owner not in (None, "", "airflow"), where
            assert (task.retries == 0) == ((dag.dag_id, task.task_id) in NOT_RETRIED), where
            assert task.retry_exponential_backoff, where
            assert task.execution_timeout is not None, where
            # Failing for good must reach a person: the shared alert notifier is on every task.
            # A mapped task keeps the callback as given; others hold a list.
            callbacks = task.on_failure_callback
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            alerts = [callback for callback in callbacks if isinstance(callback, FailureAlert)]
            assert len(alerts) == (0 if (dag.dag_id, task.task_id) in NO_ALERT else 1), where


@pytest.mark.parametrize("dag_id", WATCHED_DAGS)
def test_any_failed_task_fails_the_run_without_a_second_alert(dag_bag, dag_id: str) -> None:
    dag = dag_bag.dags[dag_id]
    watcher = dag.get_task("mark_run_failed")
    assert watcher.upstream_task_ids == set(dag.task_ids) - {watcher.task_id}
    assert watcher.trigger_rule == "one_failed"
    assert [task.task_id for task in dag.leaves] == [watcher.task_id]
    assert watcher.on_failure_callback == []


def test_learning_platform_etl_runs_its_steps_in_order_and_publishes_the_asset(dag_bag) -> None:
    dag = dag_bag.dags["learning_platform_etl"]
    order = ["migrate_schema", "extract", "validate", "load", "compute_stats", "check_quality"]
    for upstream, downstream in itertools.pairwise(order):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}
    # Through an alias: load adds an event for the asset learning_platform.attempts after a real
    # day's load, none after a test-mode run (tests/include/learning_platform/test_tasks.py).
    assert [outlet.name for outlet in dag.get_task("load").outlets] == ["learning_platform.attempts.loads"]


@pytest.mark.parametrize(("dag_id", "asset"), ALIASED_ASSETS.items())
def test_an_asset_emitted_through_an_alias_is_declared_so_that_parsing_registers_it(
    dag_bag, dag_id: str, asset: Asset
) -> None:
    # Named only by its alias, the asset is created by its first events, and two runs creating it
    # at once fail one task on Airflow's unique index (a Celery run's load did). Declared by a
    # task (the one reading it, as an inlet), the DAG processor registers it when it parses.
    declared = {
        (each.name, each.uri)
        for task in dag_bag.dags[dag_id].tasks
        for each in [*task.inlets, *task.outlets]
        if isinstance(each, Asset)
    }
    assert (asset.name, asset.uri) in declared


def test_the_report_goes_out_when_the_gate_or_publishing_fails_but_not_without_figures(dag_bag) -> None:
    dag = dag_bag.dags["learning_platform_etl"]
    publish, email = dag.get_task("publish_report"), dag.get_task("send_email")
    # "all done, at least one success": runs after a failed check (or a failed publish) as long
    # as compute_stats succeeded; when compute_stats did not, nothing upstream succeeded.
    assert publish.upstream_task_ids == {"compute_stats", "check_quality"}
    assert email.upstream_task_ids == {"compute_stats", "check_quality", "publish_report"}
    assert publish.trigger_rule == email.trigger_rule == "all_done_min_one_success"
    assert publish.retries == 0, "a failed publish must not hold the email back by its retries"
    assert set(dag.params) == {"test_mode", "window_minutes", "language"}


def test_learning_platform_etl_runs_each_day_under_its_own_logical_date(dag_bag) -> None:
    from include.common.timetables import UtcDayTimetable

    dag = dag_bag.dags["learning_platform_etl"]
    assert isinstance(dag.timetable, UtcDayTimetable)
    assert dag.description


@pytest.mark.parametrize("dag_id", ["learning_platform_etl", "csv_folder_import"])
def test_trigger_form_requires_nothing_and_labels_every_choice(dag_bag, dag_id: str) -> None:
    # Every param has a default; Airflow's form marks a param required unless its type allows null.
    # A scheduled run has only the defaults: what they leave open comes from the DAG's settings.
    for name, param in dag_bag.dags[dag_id].params.items():
        schema = param.schema
        assert "null" in schema["type"], f"param {name} is marked required"
        if "enum" in schema:
            labels = schema["values_display"]
            assert {"null" if value is None else str(value) for value in schema["enum"]} <= set(labels), name


def test_csv_folder_import_maps_one_bounded_task_per_chunk_between_planning_and_publishing(dag_bag) -> None:
    dag = dag_bag.dags["csv_folder_import"]
    order = ["migrate_schema", "discover_files", "infer_schema", "prepare_table", "plan_chunks"]
    for upstream, downstream in itertools.pairwise(order):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}
    imports = dag.get_task("import_chunk")
    assert imports.upstream_task_ids == {"plan_chunks"}
    # Bounded across all runs: each chunk holds a database connection.
    assert imports.max_active_tis_per_dag is not None
    assert imports.max_active_tis_per_dag <= 8
    assert dag.get_task("publish").upstream_task_ids == {"import_chunk"}
    # An append with every file already imported maps no chunk (import_chunk is skipped): the run
    # still publishes, recording that it imported nothing, and ends successful.
    assert dag.get_task("publish").trigger_rule == "none_failed"
    assert [outlet.name for outlet in dag.get_task("publish").outlets] == ["csv_import.tables"]
