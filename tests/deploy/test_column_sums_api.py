"""``csv_column_sums``' REST API through Airflow's real API server, and its runs under a real executor.

One ``LocalAirflow`` (LocalExecutor, PostgreSQL metadata) for the module, with the plugin loaded
from ``plugins/`` as a deployment loads it, users of each role, the results' warehouse on the
session's PostgreSQL, files on a local root and on the session's S3 server (moto). The client is
``devservices.column_sums_client.ColumnSumsClient``, what the demo and the bench use.

A run is held in progress without timing: its location is a FIFO, whose ``open`` by the task
blocks until the test opens the other end (the task then finds no regular file: ``not_found``).
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from devservices.airflow_cluster import AirflowApi, LocalAirflow
from devservices.column_sums_client import URL_PREFIX, ColumnSumsApiError, ColumnSumsClient
from devservices.csv_columns import Written, write_csv
from devservices.environment import postgres_connection_json
from devservices.postgres import LocalPostgres
from devservices.s3_server import LocalS3, create_bucket, s3_hook
from include.column_sums.results import SCHEMA
from include.column_sums.settings import DAG_ID, SETTINGS_VARIABLE
from tests.conftest import S3_CONN_ID, schema_owner_database, wait_for

pytestmark = pytest.mark.timeout(600)

ADMIN_PASSWORD = "sums-api-admin"
USERS = {
    "viewer": ("viewer", "sums-api-viewer"),
    "alice": ("user", "sums-api-alice"),
    "bob": ("user", "sums-api-bob"),
    "carol": ("user", "sums-api-carol"),
}
RESULTS_CONN_ID = "sums_results"
BUCKET = "column-sums-api"
RUN_TIMEOUT_S = 180


@dataclass(frozen=True)
class Service:
    url: str
    airflow: AirflowApi  # Airflow's own REST API, as admin
    root: Path  # the local root of the Variable's settings
    data: Written  # root/in/data.csv, also at s3://BUCKET/data.csv

    def client(self, name: str) -> ColumnSumsClient:
        return ColumnSumsClient(self.url, name, USERS[name][1] if name in USERS else ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def service(
    postgres_server: LocalPostgres, s3_server: LocalS3, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    state = tmp_path_factory.mktemp("column_sums_api")
    root = state / "root"
    (root / "in").mkdir(parents=True)
    data = write_csv(root / "in" / "data.csv", rows=2_000, columns=35, seed=15)
    write_csv(root / "in" / "narrow.csv", rows=10, columns=9, seed=16)
    create_bucket(S3_CONN_ID, BUCKET)
    s3_hook(S3_CONN_ID).load_file(data.path, key="data.csv", bucket_name=BUCKET, replace=True)

    metadata = "sums_api_metadata"
    postgres_server.drop_database(metadata)
    postgres_server.create_database(metadata)
    with schema_owner_database(
        postgres_server, __name__, prefix="sums_api_", schema=SCHEMA, role="column_sums", password="sums-pw"
    ) as warehouse:
        env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
        env |= s3_server.environment(S3_CONN_ID)
        env[f"AIRFLOW_CONN_{RESULTS_CONN_ID.upper()}"] = postgres_connection_json(
            postgres_server.conninfo(warehouse, user="column_sums", password="sums-pw")
        )
        env[f"AIRFLOW_VAR_{SETTINGS_VARIABLE.upper()}"] = json.dumps(
            {"local_root": str(root), "aws_conn_id": S3_CONN_ID, "connection": RESULTS_CONN_ID}
        )
        airflow = LocalAirflow.on_free_ports(
            home=state / "airflow",
            metadata_url=postgres_server.airflow_metadata_url(metadata),
            admin_password=ADMIN_PASSWORD,
            base_env=env,
            users=USERS,
        )
        with airflow:
            api = airflow.wait_until_ready([DAG_ID])
            yield Service(airflow.url, api, root, data)
    postgres_server.drop_database(metadata)


def token(service: Service, name: str) -> str:
    return service.client(name).login()


def call(
    service: Service, method: str, path: str, token: str | None = None, **kwargs: Any
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, f"{service.url}{URL_PREFIX}{path}", headers=headers, timeout=30, **kwargs)


def json_of(response: requests.Response) -> Any:
    # A plugin that failed to load leaves its paths to the UI's catch-all: 200 text/html.
    assert response.headers["content-type"].startswith("application/json"), response.text[:200]
    return response.json()


def expected_columns(data: Written) -> list[tuple[int, str, str, int, int, int]]:
    return [(c.index, c.name, c.sum, c.numeric, c.blank, c.non_numeric) for c in data.expected]


def found_columns(result: dict[str, Any]) -> list[tuple[int, str, str, int, int, int]]:
    return [
        (c["index"], c["name"], c["sum"], c["numeric_cells"], c["blank_cells"], c["non_numeric_cells"])
        for c in result["columns"]
    ]


# --- loading and who may call ------------------------------------------------------------------


def test_the_plugin_is_loaded_at_its_prefix_without_import_errors(service: Service) -> None:
    admin = {"Authorization": f"Bearer {token(service, 'admin')}"}
    plugins = requests.get(f"{service.url}/api/v2/plugins", headers=admin, timeout=30).json()["plugins"]
    (plugin,) = [plugin for plugin in plugins if plugin["name"] == "column_sums_api"]
    assert [app["url_prefix"] for app in plugin["fastapi_apps"]] == [URL_PREFIX]
    errors = requests.get(f"{service.url}/api/v2/plugins/importErrors", headers=admin, timeout=30).json()
    assert errors["total_entries"] == 0


def openapi_calls(service: Service) -> list[tuple[str, str]]:
    spec = json_of(requests.get(f"{service.url}{URL_PREFIX}/openapi.json", timeout=30))
    return [
        (method.upper(), path.replace("{task_id}", "0" * 32))
        for path, operations in spec["paths"].items()
        for method in operations
    ]


def test_every_route_refuses_an_anonymous_caller_with_401(service: Service) -> None:
    calls = openapi_calls(service)
    assert sorted(calls) == [
        ("GET", "/in-progress"),
        ("GET", "/tasks"),
        ("GET", f"/tasks/{'0' * 32}"),
        ("POST", "/tasks"),
    ]
    answers = {
        (method, path): call(service, method, path, json={"location": "in/data.csv"})
        for method, path in calls
    }
    assert {key: (r.status_code, json_of(r)) for key, r in answers.items()} == {
        key: (401, {"detail": "Not authenticated"}) for key in calls
    }


def test_an_invalid_token_is_refused_with_403_on_every_route(service: Service) -> None:
    calls = openapi_calls(service)
    answers = {key: call(service, *key, token="not-a-jwt", json={"location": "in/data.csv"}) for key in calls}
    assert {key: (r.status_code, json_of(r)) for key, r in answers.items()} == {
        key: (403, {"detail": "Invalid JWT token"}) for key in calls
    }


def test_a_viewer_may_read_but_not_submit(service: Service) -> None:
    viewer = token(service, "viewer")
    refused = call(service, "POST", "/tasks", viewer, json={"location": "in/data.csv"})
    assert (refused.status_code, json_of(refused)) == (403, {"detail": "Forbidden"})

    task_id = service.client("alice").submit("in/data.csv")
    count = call(service, "GET", "/in-progress", viewer)
    assert count.status_code == 200
    assert set(json_of(count)) == {"queued", "running", "in_progress"}
    read = call(service, "GET", f"/tasks/{task_id}", viewer)
    assert read.status_code == 200
    assert json_of(read)["submitted_by"] == "alice"
    assert call(service, "GET", "/tasks", viewer).status_code == 200


# --- bodies and ids ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "error_type"),
    [
        ({"json": {}}, "missing"),
        ({"json": {"location": "in/data.csv", "priority": 1}}, "extra_forbidden"),
        ({"json": {"location": ""}}, "string_too_short"),
        ({"json": {"location": "   "}}, "value_error"),
        ({"json": {"location": "ftp://x"}}, "value_error"),
        ({"json": {"location": "s3://bucket-only"}}, "value_error"),
        ({"json": {"location": 42}}, "string_type"),
        ({"data": "location=in/data.csv", "headers": {"Content-Type": "application/json"}}, "json_invalid"),
    ],
    ids=["missing", "extra-field", "empty", "blank", "ftp", "s3-without-key", "not-text", "not-json"],
)
def test_a_bad_body_is_refused_with_422_and_no_run(
    service: Service, body: dict[str, Any], error_type: str
) -> None:
    user = token(service, "bob")
    before = json_of(call(service, "GET", "/tasks", user))["total_entries"]
    headers = {"Authorization": f"Bearer {user}", **body.pop("headers", {})}
    answer = requests.post(f"{service.url}{URL_PREFIX}/tasks", headers=headers, timeout=30, **body)
    assert answer.status_code == 422
    assert [error["type"] for error in json_of(answer)["detail"]] == [error_type]
    assert json_of(call(service, "GET", "/tasks", user))["total_entries"] == before


def test_the_form_error_says_what_to_give(service: Service) -> None:
    answer = call(service, "POST", "/tasks", token(service, "bob"), json={"location": "ftp://x"})
    (error,) = json_of(answer)["detail"]
    assert error["loc"] == ["body", "location"]
    assert "only s3://bucket/key or a path relative to the local root" in error["msg"]


@pytest.mark.parametrize("task_id", ["0" * 32, "no-such-task", "x" * 300])
def test_an_unknown_task_id_is_404(service: Service, task_id: str) -> None:
    answer = call(service, "GET", f"/tasks/{task_id}", token(service, "alice"))
    assert answer.status_code == 404
    assert "no task" in json_of(answer)["detail"]


# --- end to end, under the executor ---------------------------------------------------------------


@pytest.fixture(scope="module")
def finished(service: Service) -> dict[str, dict[str, Any]]:
    """alice's four requests and bob's one, submitted together, each waited for: {name: answer}."""
    alice, bob = service.client("alice"), service.client("bob")
    submitted = {
        "local": (alice, alice.submit("in/data.csv")),
        "s3": (alice, alice.submit(f"s3://{BUCKET}/data.csv")),
        "narrow": (alice, alice.submit("in/narrow.csv")),
        "missing": (alice, alice.submit("in/no-such-file.csv")),
        "bob": (bob, bob.submit("in/data.csv")),
    }
    return {
        name: client.wait(task_id, timeout_s=RUN_TIMEOUT_S) for name, (client, task_id) in submitted.items()
    }


@pytest.mark.parametrize("name", ["local", "s3"])
def test_a_file_on_local_disk_or_s3_comes_back_with_the_generators_exact_sums(
    service: Service, finished: dict[str, dict[str, Any]], name: str
) -> None:
    answer = finished[name]
    assert answer["state"] == "success", answer
    assert answer["error"] is None
    assert answer["submitted_by"] == "alice"
    assert answer["result"]["rows"] == service.data.rows
    assert answer["result"]["header_columns"] == 35
    assert found_columns(answer["result"]) == expected_columns(service.data)
    assert answer["queued_at"] <= answer["started_at"] <= answer["ended_at"]


@pytest.mark.parametrize(("name", "code"), [("narrow", "too_few_columns"), ("missing", "not_found")])
def test_a_file_that_cannot_be_summed_comes_back_failed_with_its_code(
    finished: dict[str, dict[str, Any]], name: str, code: str
) -> None:
    answer = finished[name]
    assert answer["state"] == "failed"
    assert answer["result"] is None
    assert answer["error"]["code"] == code
    assert answer["error"]["message"]


def test_the_list_holds_the_callers_tasks_only_newest_first(
    service: Service, finished: dict[str, dict[str, Any]]
) -> None:
    listed = service.client("bob").my_tasks()
    assert [task["task_id"] for task in listed["tasks"]] == [finished["bob"]["task_id"]]
    assert listed["total_entries"] == 1
    (only,) = listed["tasks"]
    assert (only["state"], only["result"]) == ("success", None)

    alice = service.client("alice").my_tasks()
    ids = [task["task_id"] for task in alice["tasks"]]
    assert {finished[name]["task_id"] for name in ("local", "s3", "narrow", "missing")} <= set(ids)
    assert all(task["submitted_by"] == "alice" for task in alice["tasks"])
    # Newest first: in the order of submission, reversed.
    order = [finished[name]["task_id"] for name in ("missing", "narrow", "s3", "local")]
    assert [task_id for task_id in ids if task_id in order] == order
    states = {task["task_id"]: (task["state"], (task["error"] or {}).get("code")) for task in alice["tasks"]}
    assert states[finished["narrow"]["task_id"]] == ("failed", "too_few_columns")
    assert service.client("alice").my_tasks(limit=2)["total_entries"] == alice["total_entries"]
    assert len(service.client("alice").my_tasks(limit=2)["tasks"]) == 2


class HeldFile:
    """A FIFO under the root: a task that opens it waits until :meth:`release`."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = path

    def release(self) -> None:
        # Opening the writing end without blocking fails with ENXIO until the task's open waits.
        def opened() -> bool:
            try:
                os.close(os.open(self.path, os.O_WRONLY | os.O_NONBLOCK))
            except OSError as error:
                if error.errno == errno.ENXIO:
                    return False
                raise
            return True

        wait_for(opened, f"a task to open {self.path}", timeout_s=RUN_TIMEOUT_S, poll_s=0.2)


def test_the_in_progress_count_holds_a_running_task_until_it_ends(service: Service) -> None:
    held = HeldFile(service.root / "in" / "held.csv")
    carol = service.client("carol")
    assert carol.in_progress(mine=True) == {"queued": 0, "running": 0, "in_progress": 0}

    task_id = carol.submit("in/held.csv")
    mine = carol.in_progress(mine=True)
    assert mine["in_progress"] == 1
    assert mine["queued"] + mine["running"] == 1
    everyone = carol.in_progress()
    assert everyone["in_progress"] == everyone["queued"] + everyone["running"] >= 1

    held.release()
    # The task then finds a FIFO, not a regular file: the file's problem, not the service's.
    answer = carol.wait(task_id, timeout_s=RUN_TIMEOUT_S)
    assert (answer["state"], answer["error"]["code"]) == ("failed", "not_found")
    assert carol.in_progress(mine=True)["in_progress"] == 0


def test_a_run_that_failed_is_answered_as_an_internal_error_naming_the_run(service: Service) -> None:
    HeldFile(service.root / "in" / "never-released.csv")
    carol = service.client("carol")
    task_id = carol.submit("in/never-released.csv")
    # An operator marks the stuck run failed, as from the UI.
    service.airflow.mark_run(DAG_ID, task_id, "failed")
    answer = carol.task(task_id)
    assert answer["state"] == "failed"
    assert answer["result"] is None
    assert answer["error"]["code"] == "internal_error"
    assert task_id in answer["error"]["message"]


def test_the_client_raises_with_the_status_and_detail(service: Service) -> None:
    with pytest.raises(ColumnSumsApiError) as refused:
        service.client("viewer").submit("in/data.csv")
    assert (refused.value.status, refused.value.detail) == (403, "Forbidden")


def test_a_paused_dag_refuses_submits_with_503_instead_of_queueing_them_forever(service: Service) -> None:
    alice = token(service, "alice")
    service.airflow.set_paused(DAG_ID, paused=True)
    try:
        refused = call(service, "POST", "/tasks", alice, json={"location": "in/data.csv"})
    finally:
        service.airflow.set_paused(DAG_ID, paused=False)
    assert refused.status_code == 503
    assert "paused" in json_of(refused)["detail"]


def test_the_docs_are_served_under_the_prefix_and_a_trailing_slash_redirects(service: Service) -> None:
    docs = requests.get(f"{service.url}{URL_PREFIX}/docs", timeout=30)
    assert docs.status_code == 200
    assert f"{URL_PREFIX}/openapi.json" in docs.text
    slash = call(service, "GET", "/tasks/", token(service, "alice"), allow_redirects=False)
    assert slash.status_code == 307
    assert slash.headers["location"].endswith(f"{URL_PREFIX}/tasks")
