"""A run's params (and the settings Variable's gaps) become one validated ImportSpec."""

from __future__ import annotations

import pytest

from include.common.failures import ConfigurationError
from include.csv_import.ledger import Mode
from include.csv_import.model import ColumnType
from include.csv_import.spec import DEFAULT_DB_CONN_ID, DEFAULT_PATTERN, ImportSpec
from include.csv_import.table import TableName

MINIMAL = {"source": "/data/drop", "table": "energy.certificates"}


def spec(**params) -> ImportSpec:
    return ImportSpec.from_params({**MINIMAL, **params}, run_id="manual__1")


def test_the_minimal_params_take_the_defaults() -> None:
    result = spec()
    assert result.source == "file:///data/drop"
    assert result.table == TableName("energy", "certificates")
    assert result.pattern == DEFAULT_PATTERN
    assert result.conn_id == DEFAULT_DB_CONN_ID
    assert result.storage_conn_id is None
    assert result.mode is Mode.APPEND
    assert result.chunk_bytes == 256 * 1024 * 1024


def test_urls_are_kept_and_a_tab_can_be_typed_as_backslash_t() -> None:
    result = spec(source="s3://bucket/quarterly/", delimiter="\\t", storage_connection="aws_drop")
    assert result.source == "s3://bucket/quarterly"
    assert result.dialect.delimiter == "\t"
    assert result.storage_conn_id == "aws_drop"


def test_column_types_accept_json_text_and_postgres_type_names() -> None:
    assert spec(column_types='{"postcode": "TEXT"}').column_types == {"postcode": ColumnType.TEXT}


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"source": ""}, "source"),
        ({"source": "data/drop"}, "absolute path"),
        ({"table": "certificates"}, "schema-qualified"),
        ({"table": "pg_catalog.certificates"}, "reserved"),
        ({"pattern": "../elsewhere/*.csv"}, "without '..'"),
        ({"mode": "merge"}, "'append' or 'replace'"),
        ({"delimiter": ";;"}, "one character"),
        ({"encoding": "klingon-8"}, "encoding"),
        ({"column_types": {"postcode": "varchar"}}, "not one of"),
        ({"max_rejected_share": 2}, "between 0 and 1"),
    ],
)
def test_an_invalid_param_is_refused_naming_what_to_fix(params, named) -> None:
    with pytest.raises(ConfigurationError, match=named):
        spec(**params)
