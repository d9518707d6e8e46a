"""A run's params, gaps filled from the Variable usage_files_ingest, become one IngestSpec."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from include.common.failures import ConfigurationError
from include.common.settings import parse_settings
from include.usage_ingest.model import BatchLimits
from include.usage_ingest.settings import AfterProcessing, IngestSpec

MIB = 1024 * 1024


def spec(**params) -> IngestSpec:
    return IngestSpec.from_params({"incoming": "/data/usage/incoming", **params}, run_id="run-1")


def test_only_incoming_is_required_the_rest_has_defaults() -> None:
    made = spec()

    assert made.incoming == Path("/data/usage/incoming")
    assert made.archive == Path("/data/usage/archive")
    assert made.pattern == "*.usage"
    assert made.after_processing is AfterProcessing.ARCHIVE
    assert made.settle_seconds == 30
    assert made.range_bytes == 256 * MIB
    assert made.limits == BatchLimits(max_bytes=256 * MIB, max_consumers=200_000)
    assert made.max_files_per_run == 100
    assert made.conn_id == "warehouse_db"
    assert made.run_id == "run-1"


def test_every_param_is_taken() -> None:
    made = spec(
        archive="/data/done",
        pattern="**/*.txt",
        after_processing="mark",
        settle_seconds=5,
        range_mb=8,
        batch_mb=2,
        max_batch_consumers=1000,
        max_files_per_run=3,
        connection="usage_db",
    )

    assert (made.archive, made.pattern, made.after_processing) == (
        Path("/data/done"),
        "**/*.txt",
        AfterProcessing.MARK,
    )
    assert (made.settle_seconds, made.range_bytes, made.limits) == (5, 8 * MIB, BatchLimits(2 * MIB, 1000))
    assert (made.max_files_per_run, made.conn_id) == (3, "usage_db")


def test_empty_params_take_the_defaults() -> None:
    assert spec(pattern="", settle_seconds=None, connection=None) == spec()


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"incoming": None}, "param 'incoming'"),
        ({"incoming": "relative/folder"}, "incoming must be an absolute folder"),
        ({"archive": "/data/usage/incoming/archive"}, "param 'archive'"),
        ({"pattern": "../*.usage"}, "pattern"),
        ({"after_processing": "delete"}, "after_processing"),
        ({"settle_seconds": -1}, "settle_seconds"),
        ({"range_mb": 0}, "range_mb"),
        ({"batch_mb": "big"}, "batch_mb"),
        ({"max_batch_consumers": 0}, "max_batch_consumers"),
        ({"max_files_per_run": 0}, "max_files_per_run"),
    ],
)
def test_every_error_names_the_param_to_fix(params: dict, named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        spec(**params)


def test_the_variable_fills_what_the_run_left_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    from include.common.settings import params_with_settings

    variable = {"incoming": "/srv/usage/in", "pattern": "*.u", "settle_seconds": 60}
    monkeypatch.setenv("AIRFLOW_VAR_USAGE_FILES_INGEST", json.dumps(variable))

    merged = params_with_settings(
        {"incoming": None, "pattern": "*.usage", "settle_seconds": ""}, "usage_files_ingest"
    )

    assert merged == {"incoming": "/srv/usage/in", "pattern": "*.usage", "settle_seconds": 60}


@pytest.mark.parametrize(("value", "said"), [("{", "is not valid JSON"), ("[1]", "must be a JSON object")])
def test_a_broken_variable_is_named(value: str, said: str) -> None:
    with pytest.raises(ConfigurationError, match=f"Variable 'usage_files_ingest' {said}"):
        parse_settings("usage_files_ingest", value)
