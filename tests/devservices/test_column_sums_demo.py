"""The column sums demo's pieces: its sample, its Variable, its S3 copy, and the checks it prints.

The checks of ``make run DAG=csv_column_sums`` are fed what the pipeline's own compute makes of
the demo's sample (``include.column_sums.tasks.compute``), so they are proven to pass on a right
answer, and to fail on one that is wrong by a single unit or a single cell.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from devservices.column_sums_demo import (
    BUCKET,
    S3_CONN_ID,
    VARIABLE_ENV,
    configure_demo_sums,
    curl_session,
    s3_environment,
    sample,
    serve_from_s3,
)
from devservices.local_runs.csv_column_sums import check_missing, check_sums, describe
from devservices.s3_server import LocalS3
from include.column_sums.settings import SumsSpec
from include.column_sums.tasks import compute

ROWS = 3_000


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("column_sums_root")


def answer_for(root: Path, location: str) -> dict[str, Any]:
    """What the API answers for ``location`` once its task is done, computed by the pipeline's code."""
    stored = compute(SumsSpec.from_params({"location": location, "local_root": str(root)}, task_id="t1"))
    if stored.outcome.value == "sums":
        return {
            "task_id": "t1",
            "state": "success",
            "location": location,
            "result": stored.result,
            "error": None,
        }
    return {"task_id": "t1", "state": "failed", "location": location, "result": None, "error": stored.result}


def test_the_sample_is_generated_once_and_its_expected_sums_are_kept_beside_it(root: Path) -> None:
    first = sample(ROWS, 30, root=root)
    path = Path(first.path)
    generated = path.stat().st_mtime_ns

    again = sample(ROWS, 30, root=root)

    assert again == first
    assert path.stat().st_mtime_ns == generated
    assert path.parent == root
    assert [column.index for column in first.expected] == [10, 20, 30]
    assert not list(root.glob("*.partial"))


def test_an_unset_variable_points_at_the_demo_root_the_s3_connection_and_the_warehouse(root: Path) -> None:
    environ: dict[str, str] = {}

    value = configure_demo_sums(environ, root=root)

    spec = SumsSpec.from_params({"location": "x.csv", **json.loads(value)}, task_id="t")
    assert (spec.local_root, spec.aws_conn_id, spec.conn_id) == (root, S3_CONN_ID, "warehouse_db")
    assert environ == {VARIABLE_ENV: value}


def test_a_variable_the_user_set_is_kept_unless_the_demo_must_own_it(root: Path) -> None:
    mine = json.dumps({"local_root": "/data/csv", "aws_conn_id": "aws_prod"})

    assert configure_demo_sums({VARIABLE_ENV: mine}, root=root) == mine
    forced = configure_demo_sums({VARIABLE_ENV: mine}, root=root, force=True)
    assert json.loads(forced)["local_root"] == str(root)


def test_the_sample_served_from_s3_is_the_same_bytes(root: Path) -> None:
    path = Path(sample(ROWS, 30, root=root).path)
    with LocalS3() as server:
        location = serve_from_s3(server, path)
        client = server.boto3_client()
        body = client.get_object(Bucket=BUCKET, Key=path.name)["Body"].read()
        # The connection Airflow is given names the same server.
        [connection] = s3_environment(server).values()

    assert location == f"s3://{BUCKET}/{path.name}"
    assert body == path.read_bytes()
    assert json.loads(connection)["extra"]["endpoint_url"] == server.endpoint_url


def test_the_sums_check_passes_on_the_pipelines_answer_and_the_table_shows_each_column(root: Path) -> None:
    written = sample(ROWS, 30, root=root)
    answer = answer_for(root, Path(written.path).name)

    check = check_sums(answer, written)
    table = describe(answer)

    assert check.ok, check.message
    assert f"{ROWS:,} rows, 30 columns" in table
    for column in written.expected:
        assert f"{column.index} {column.name}" in table
        assert column.sum in table


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("sum", lambda value: str(Decimal(value) + Decimal("0.000001"))),
        ("blank_cells", lambda value: value + 1),
        ("non_numeric_cells", lambda value: value - 1),
        ("name", lambda value: value + "x"),
    ],
)
def test_the_sums_check_fails_on_an_answer_wrong_by_one_unit_or_one_cell(root: Path, field, change) -> None:
    written = sample(ROWS, 30, root=root)
    answer = copy.deepcopy(answer_for(root, Path(written.path).name))
    column = answer["result"]["columns"][1]
    column[field] = change(column[field])

    check = check_sums(answer, written)

    assert not check.ok
    assert "WRONG" in check.message
    assert "column 20" in check.message


def test_the_sums_check_fails_when_the_file_was_not_summed(root: Path) -> None:
    written = sample(ROWS, 30, root=root)

    assert not check_sums(answer_for(root, "no-such-file.csv"), written).ok


def test_a_missing_file_is_expected_to_be_answered_not_found(root: Path) -> None:
    missing = answer_for(root, "no-such-file.csv")

    assert check_missing(missing).ok
    assert describe(missing).startswith("failed, not_found: ")
    assert not check_missing(answer_for(root, Path(sample(ROWS, 30, root=root).path).name)).ok


def test_the_curl_session_names_every_request_and_prints_no_secret() -> None:
    lines = curl_session("http://127.0.0.1:8080", "admin", ["data.csv", "s3://b/k.csv"], "run-1")
    text = "\n".join(lines)

    assert "http://127.0.0.1:8080/auth/token" in lines[0]
    assert '"password": "<password>"' in lines[0]
    assert sum("-X POST http://127.0.0.1:8080/column-sums/tasks " in line for line in lines) == 2
    assert '{"location": "s3://b/k.csv"}' in text
    assert "/column-sums/tasks/run-1 " in text
    assert "/column-sums/in-progress " in text
    assert text.count("$TOKEN") == len(lines) - 1
