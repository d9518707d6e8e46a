"""The task body against a real PostgreSQL, real files and the real S3 server: what a request stores."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import psycopg
import pytest
from airflow.sdk.exceptions import AirflowFailException

from devservices.csv_columns import write_csv
from devservices.environment import postgres_connection_json
from devservices.s3_server import create_bucket, s3_hook
from include.column_sums import results, tasks
from include.column_sums.results import Outcome
from include.column_sums.settings import SumsSpec
from include.common.postgres import WarehouseUnavailable
from tests.conftest import S3_CONN_ID

BUCKET = "column-sums-tasks"


@pytest.fixture
def results_db(monkeypatch: pytest.MonkeyPatch, airflow_home, results_conninfo: str) -> str:
    """The results' database as the Airflow connection warehouse_db, the task's default."""
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_DB", postgres_connection_json(results_conninfo))
    return results_conninfo


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("root")
    (root / "in").mkdir()
    return root, write_csv(root / "in" / "data.csv", rows=5_000, columns=25, seed=7)


def spec(root: Path | None, location: str, task_id: str = "req1", try_number: int = 1) -> SumsSpec:
    return SumsSpec(
        location=location,
        local_root=root,
        aws_conn_id=S3_CONN_ID,
        conn_id="warehouse_db",
        processes=1,
        task_id=task_id,
        try_number=try_number,
    )


def stored(conninfo: str, task_id: str) -> results.StoredResult | None:
    with psycopg.connect(conninfo) as conn:
        return results.load_result(conn, task_id)


def expected_columns(written) -> list[tuple[str, str, int, int, int]]:
    return [(c.name, c.sum, c.numeric, c.blank, c.non_numeric) for c in written.expected]


def found_columns(result: dict) -> list[tuple[str, str, int, int, int]]:
    return [
        (c["name"], c["sum"], c["numeric_cells"], c["blank_cells"], c["non_numeric_cells"])
        for c in result["columns"]
    ]


def test_a_local_file_is_summed_and_stored_under_the_task_id(results_db: str, written) -> None:
    root, data = written
    figures = tasks.sum_file(spec(root, "in/data.csv"))
    assert figures["outcome"] == "sums"
    assert figures["rows"] == 5_000
    row = stored(results_db, "req1")
    assert row.outcome is Outcome.SUMS
    assert row.rows == 5_000
    assert row.bytes_read == data.bytes
    assert row.source_size == data.bytes
    assert row.location == "in/data.csv"
    assert found_columns(row.result) == expected_columns(data)


def test_a_rerun_replaces_its_row_and_never_adds_one(results_db: str, written) -> None:
    root, _ = written
    tasks.sum_file(spec(root, "in/data.csv"))
    tasks.sum_file(spec(root, "in/data.csv", try_number=2))
    with psycopg.connect(results_db) as conn:
        rows = conn.execute("SELECT task_id, try_number FROM column_sums.results").fetchall()
    assert rows == [("req1", 2)]


def test_an_s3_object_is_summed_through_the_connection(results_db: str, written, s3_server) -> None:
    _, data = written
    create_bucket(S3_CONN_ID, BUCKET)
    s3_hook(S3_CONN_ID).get_conn().upload_file(data.path, BUCKET, "drop/data.csv")
    tasks.sum_file(spec(None, f"s3://{BUCKET}/drop/data.csv", task_id="req-s3"))
    row = stored(results_db, "req-s3")
    assert row.outcome is Outcome.SUMS
    assert row.source_version.strip('"')
    assert found_columns(row.result) == expected_columns(data)


@pytest.mark.parametrize(
    ("location", "content", "code"),
    [
        ("in/missing.csv", None, "not_found"),
        ("../etc/passwd", None, "outside_root"),
        ("in/narrow.csv", b"a,b,c\n1,2,3\n", "too_few_columns"),
        ("in/empty.csv", b"", "empty_file"),
        ("in/numbers.csv", b"1,2,3,4,5,6,7,8,9,10\n", "no_header"),
    ],
)
def test_a_file_that_cannot_be_summed_stores_its_problem_and_the_task_succeeds(
    results_db: str, tmp_path: Path, location: str, content: bytes | None, code: str
) -> None:
    (tmp_path / "in").mkdir()
    if content is not None:
        (tmp_path / location).write_bytes(content)
    figures = tasks.sum_file(spec(tmp_path, location, task_id="bad"))
    assert figures["outcome"] == "problem"
    assert figures["problem"] == code
    row = stored(results_db, "bad")
    assert row.outcome is Outcome.PROBLEM
    assert row.rows is None
    assert row.result["code"] == code
    assert row.result["message"]
    assert str(tmp_path) not in row.result["message"]  # the server's own folders are not the caller's


def test_an_unknown_task_id_has_no_result_even_before_the_schema_exists(results_db: str) -> None:
    assert stored(results_db, "nobody") is None


def test_a_warehouse_that_is_down_fails_the_try_for_a_retry(monkeypatch, airflow_home, written) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE_DB",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": "127.0.0.1",
                "port": 1,
                "schema": "x",
                "extra": {"connect_timeout": 2},
            }
        ),
    )
    root, _ = written
    with pytest.raises(WarehouseUnavailable):
        tasks.sum_file(spec(root, "in/data.csv"))


def test_an_undefined_results_connection_fails_at_once(airflow_home, written) -> None:
    root, _ = written
    with pytest.raises(AirflowFailException, match="not defined"):
        tasks.sum_file(dataclasses.replace(spec(root, "in/data.csv"), conn_id="no_such_db"))
