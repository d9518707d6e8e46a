"""A request's spec: its location, and the deployment's storage and results from the Variable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from include.column_sums.settings import (
    DEFAULT_AWS_CONN_ID,
    DEFAULT_CONN_ID,
    SumsSpec,
    configured_results_conn_id,
)
from include.common.failures import ConfigurationError


def test_a_request_without_settings_reads_s3_through_the_default_connection() -> None:
    spec = SumsSpec.from_params({"location": "s3://b/k.csv"}, task_id="abc", try_number=2)
    assert (spec.location, spec.task_id, spec.try_number) == ("s3://b/k.csv", "abc", 2)
    assert (spec.local_root, spec.aws_conn_id, spec.conn_id, spec.processes) == (
        None,
        DEFAULT_AWS_CONN_ID,
        DEFAULT_CONN_ID,
        1,
    )


def test_an_empty_aws_connection_turns_s3_off() -> None:
    assert SumsSpec.from_params({"location": "x", "aws_conn_id": ""}, task_id="t").aws_conn_id is None


def test_the_task_reads_the_variable(monkeypatch: pytest.MonkeyPatch, airflow_home, tmp_path: Path) -> None:
    settings = {
        "local_root": str(tmp_path),
        "aws_conn_id": "s3_prod",
        "connection": "results_db",
        "processes": 2,
    }
    monkeypatch.setenv("AIRFLOW_VAR_CSV_COLUMN_SUMS", json.dumps(settings))
    spec = SumsSpec.from_airflow({"location": "in/a.csv"}, run_id="r1", try_number=1)
    assert (spec.local_root, spec.aws_conn_id, spec.conn_id, spec.processes) == (
        tmp_path,
        "s3_prod",
        "results_db",
        2,
    )
    assert configured_results_conn_id(json.dumps(settings)) == "results_db"
    assert configured_results_conn_id(None) == DEFAULT_CONN_ID


@pytest.mark.parametrize(
    ("settings", "names"),
    [
        ({"local_root": "relative/dir"}, "local_root"),
        ({"processes": 0}, "processes"),
        ({"processes": "2"}, "processes"),
        ({"connection": 5}, "connection"),
    ],
)
def test_invalid_settings_fail_the_task_at_once_naming_the_key(
    monkeypatch: pytest.MonkeyPatch, airflow_home, settings: dict, names: str
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_CSV_COLUMN_SUMS", json.dumps(settings))
    with pytest.raises(AirflowFailException, match=names):
        SumsSpec.from_airflow({"location": "a.csv"}, run_id="r1", try_number=1)


def test_a_run_without_a_location_names_the_param() -> None:
    with pytest.raises(ConfigurationError, match="'location'"):
        SumsSpec.from_params({}, task_id="t")
