"""The REST API's rules that need no server: what a body may be, and how a run's state reads.

Through Airflow's API server (login, permissions, runs under an executor) the API is tested in
``tests/deploy/test_column_sums_api.py``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from fastapi import HTTPException
from pydantic import ValidationError

from devservices.environment import postgres_connection_json
from devservices.postgres import free_port
from include.column_sums import api, results
from include.column_sums.problems import TooFewColumns
from include.column_sums.results import Outcome, StoredResult
from include.column_sums.settings import SETTINGS_VARIABLE

QUEUED_AT = datetime(2026, 12, 6, 17, 0, tzinfo=UTC)
STARTED, ENDED = QUEUED_AT.replace(second=1), QUEUED_AT.replace(second=4)
SUMS = {
    "rows": 2,
    "header_columns": 10,
    "bytes_read": 60,
    "columns": [
        {
            "index": 10,
            "name": "c10",
            "sum": "3.50",
            "numeric_cells": 1,
            "blank_cells": 0,
            "non_numeric_cells": 1,
            "non_numeric_samples": [{"row": 2, "line": 3, "value": "n/a"}],
        }
    ],
    "ragged_rows": 0,
    "ragged_samples": [],
}


def run(state: str, run_id: str = "r1") -> tuple[Any, ...]:
    return (run_id, state, {"location": "in/a.csv"}, "alice", QUEUED_AT, STARTED, ENDED)


def stored(outcome: Outcome, result: dict[str, Any], task_id: str = "r1") -> StoredResult:
    return StoredResult(
        task_id=task_id,
        location="in/a.csv",
        outcome=outcome,
        result=result,
        source_size=60,
        source_version="v1",
        rows=2 if outcome is Outcome.SUMS else None,
        bytes_read=60,
        resumes=0,
        seconds=0.1,
        try_number=1,
    )


# --- the body ------------------------------------------------------------------------------------


@pytest.mark.parametrize("location", ["s3://bucket/data.csv", "in/data.csv", "data.csv", "a b/c.csv"])
def test_a_location_of_either_kind_is_accepted_as_given(location: str) -> None:
    assert api.SubmitBody.model_validate({"location": location}).location == location


@pytest.mark.parametrize(
    ("body", "error_type"),
    [
        ({}, "missing"),
        ({"location": "in/a.csv", "priority": 1}, "extra_forbidden"),
        ({"location": ""}, "string_too_short"),
        ({"location": "  "}, "value_error"),
        ({"location": "ftp://x"}, "value_error"),
        ({"location": "s3://bucket"}, "value_error"),
        ({"location": "s3://bucket/folder/"}, "value_error"),
        ({"location": "in/\x00a.csv"}, "value_error"),
        ({"location": "x" * 1025}, "string_too_long"),
        ({"location": ["in/a.csv"]}, "string_type"),
    ],
)
def test_a_body_that_is_not_one_location_is_refused(body: dict[str, Any], error_type: str) -> None:
    with pytest.raises(ValidationError) as refused:
        api.SubmitBody.model_validate(body)
    assert [error["type"] for error in refused.value.errors()] == [error_type]


def test_a_refused_form_says_what_to_give() -> None:
    with pytest.raises(ValidationError) as refused:
        api.SubmitBody.model_validate({"location": "ftp://x"})
    (error,) = refused.value.errors()
    assert "only s3://bucket/key or a path relative to the local root" in error["msg"]


# --- a run's state as the API answers it -------------------------------------------------------------


@pytest.mark.parametrize("state", ["queued", "running"])
def test_a_run_in_progress_is_answered_with_its_own_state_and_nothing_else(state: str) -> None:
    answer = api.task_state(run(state), None)
    assert (answer.state, answer.result, answer.error) == (state, None, None)
    assert (answer.location, answer.submitted_by) == ("in/a.csv", "alice")
    assert (answer.queued_at, answer.started_at, answer.ended_at) == (QUEUED_AT, STARTED, ENDED)


def test_a_run_in_progress_ignores_a_row_written_before_the_run_ended() -> None:
    # The task writes its row, then the run ends: until it has, the answer is not final.
    answer = api.task_state(run("running"), stored(Outcome.SUMS, SUMS))
    assert (answer.state, answer.result) == ("running", None)


def test_a_successful_run_with_sums_is_success_with_the_result() -> None:
    answer = api.task_state(run("success"), stored(Outcome.SUMS, SUMS))
    assert answer.state == "success"
    assert answer.error is None
    assert answer.model_dump(mode="json")["result"] == SUMS


def test_a_listed_task_has_its_state_and_error_but_not_its_result() -> None:
    listed = api.task_state(run("success"), stored(Outcome.SUMS, SUMS), with_result=False)
    assert (listed.state, listed.result) == ("success", None)
    problem = {"code": "not_found", "message": "'in/a.csv' does not exist"}
    listed = api.task_state(run("success"), stored(Outcome.PROBLEM, problem), with_result=False)
    assert (listed.state, listed.error.code) == ("failed", "not_found")


def test_a_successful_run_whose_file_had_a_problem_is_failed_with_the_files_code() -> None:
    problem = TooFewColumns("the header has 4 columns: a file needs at least 10").to_json()
    answer = api.task_state(run("success"), stored(Outcome.PROBLEM, problem))
    assert (answer.state, answer.result) == ("failed", None)
    assert answer.error.model_dump() == problem


def test_a_failed_run_is_an_internal_error_naming_the_run_for_an_operator() -> None:
    answer = api.task_state(run("failed", "run-42"), None)
    assert (answer.state, answer.result, answer.error.code) == ("failed", None, "internal_error")
    assert "run-42" in answer.error.message
    assert "operator" in answer.error.message


def test_a_successful_run_without_a_stored_result_is_an_internal_error_too() -> None:
    answer = api.task_state(run("success", "run-43"), None)
    assert (answer.state, answer.error.code) == ("failed", "internal_error")
    assert "run-43" in answer.error.message


# --- the warehouse as the API reads it ------------------------------------------------------------


def settings(monkeypatch: pytest.MonkeyPatch, conninfo: str) -> None:
    monkeypatch.setenv(f"AIRFLOW_VAR_{SETTINGS_VARIABLE.upper()}", json.dumps({"connection": "sums_api"}))
    monkeypatch.setenv("AIRFLOW_CONN_SUMS_API", postgres_connection_json(conninfo))


def test_results_are_read_through_the_configured_connection_in_one_query(
    monkeypatch: pytest.MonkeyPatch, results_conninfo: str
) -> None:
    settings(monkeypatch, results_conninfo)
    with psycopg.connect(results_conninfo) as conn:
        results.migrate_schema(conn)
        results.save_result(conn, stored(Outcome.SUMS, SUMS, task_id="a"))
        results.save_result(conn, stored(Outcome.PROBLEM, {"code": "x", "message": "y"}, task_id="b"))
    with api.results_connection() as conn:
        found = results.load_results(conn, ["a", "b", "not-there"])
    assert {task_id: row.outcome for task_id, row in found.items()} == {
        "a": Outcome.SUMS,
        "b": Outcome.PROBLEM,
    }


def test_before_the_first_request_there_is_no_result_rather_than_an_error(
    monkeypatch: pytest.MonkeyPatch, results_conninfo: str
) -> None:
    settings(monkeypatch, results_conninfo)
    with api.results_connection() as conn:
        assert results.load_results(conn, ["a"]) == {}
        assert results.load_result(conn, "a") is None


def test_a_warehouse_that_is_down_is_a_503_that_names_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    settings(monkeypatch, f"host=127.0.0.1 port={free_port()} dbname=w user=u password=Secret-pw")
    with pytest.raises(HTTPException) as refused, api.results_connection():
        pass
    assert refused.value.status_code == 503
    assert "'sums_api'" in refused.value.detail
    assert "Secret-pw" not in refused.value.detail


def test_an_undefined_results_connection_is_a_503_that_says_what_to_define(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(f"AIRFLOW_VAR_{SETTINGS_VARIABLE.upper()}", json.dumps({"connection": "nowhere"}))
    with pytest.raises(HTTPException) as refused, api.results_connection():
        pass
    assert refused.value.status_code == 503
    assert "'nowhere'" in refused.value.detail
    assert "define" in refused.value.detail


def test_invalid_settings_are_a_503_that_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"AIRFLOW_VAR_{SETTINGS_VARIABLE.upper()}", "{not json")
    with pytest.raises(HTTPException) as refused, api.results_connection():
        pass
    assert refused.value.status_code == 503
    assert SETTINGS_VARIABLE in refused.value.detail
