"""Fault rows of ``csv_column_sums``: storage that fails mid-file, a worker killed, the API server restarted.

The storage rows run the task's body (``include.column_sums.tasks.sum_file``, what the DAG's task
calls) against a real PostgreSQL and the real S3 server (moto), read through
:class:`~tests.reliability.s3_proxy.FaultyS3Proxy`, with the connection's own (the Amazon
provider's default) client retries. The rows about Airflow run under Airflow itself: one
deployment for the module (``LocalAirflow``: api-server with the ``/column-sums`` plugin,
scheduler, dag-processor, triggerer, the LocalExecutor, PostgreSQL metadata), the DAG as
deployed with its retries (1 s apart here). Faults go in through real means: the proxy's cut,
reset and refused answers, an object replaced on the server, SIGKILL, the api-server's process
group stopped and started again.

To strike mid-read whatever the machine's speed, the proxy stalls a GET after half its body and
holds it until the test releases it (``Fault.STALL``, ``FaultyS3Proxy.wait_until_stalled``):
the reader is then known to be inside the file, never by sleeping. A released stall is a cut
body to its reader, which resumes from its last byte.

Each row's truth is the generator's own (``devservices.csv_columns.write_csv``: every 10th
column's exact sum and cell counts, from its choices, never from a parser), and one results row
per request.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
import requests

from devservices.airflow_cluster import ADMIN_USER, AirflowApi, LocalAirflow
from devservices.column_sums_client import URL_PREFIX, ColumnSumsClient
from devservices.csv_columns import Written, write_csv
from devservices.environment import environment_without
from devservices.postgres import LocalPostgres, free_port
from devservices.s3_server import LocalS3, create_bucket, s3_hook
from include.column_sums import results, tasks
from include.column_sums.results import Outcome, StoredResult
from include.column_sums.settings import DAG_ID, SETTINGS_VARIABLE, SumsSpec
from tests.conftest import S3_CONN_ID
from tests.reliability.conftest import warehouse_db
from tests.reliability.s3_proxy import Fault, FaultyS3Proxy, Get
from tests.test_end_to_end import smtp_connection, warehouse_connection

T = TypeVar("T")

# Airflow's start (migrating a fresh metadata database) falls in the first Airflow row's time.
pytestmark = pytest.mark.timeout(600)

PIPELINE = DAG_ID
BUCKET = "column-sums-faults"
PROXIED_CONN_ID = "column_sums_faulty_s3"
ADMIN_PASSWORD = "sums-faults-Admin-pw-5"
WAREHOUSE, METADATA = "sums_faults_warehouse", "sums_faults_metadata"
RUN_TIMEOUT_S = 300
# About 1.6 MB: two of the task's 1 MiB reads, so a cut falls inside the file, not after it.
ROWS, COLUMNS = 8_000, 25


@dataclass(frozen=True)
class SourceFile:
    key: str
    written: Written

    @property
    def location(self) -> str:
        return f"s3://{BUCKET}/{self.key}"


@pytest.fixture(scope="module")
def files(s3_server: LocalS3, tmp_path_factory: pytest.TempPathFactory) -> dict[str, SourceFile]:
    """Generated CSV files on the S3 server, by name: one per row, so each row's GETs are its own."""
    folder = tmp_path_factory.mktemp("sums_faults_files")
    create_bucket(S3_CONN_ID, BUCKET)
    client = s3_hook(S3_CONN_ID).get_conn()
    made = {}
    for seed, name in enumerate(("cut", "replaced", "killed", "restart-1", "restart-2", "restart-3"), 1):
        written = write_csv(folder / f"{name}.csv", rows=ROWS, columns=COLUMNS, seed=seed)
        made[name] = SourceFile(f"faults/{name}.csv", written)
        client.upload_file(written.path, BUCKET, made[name].key)
    return made


@pytest.fixture
def proxy(s3_server: LocalS3) -> Iterator[FaultyS3Proxy]:
    with FaultyS3Proxy(s3_server.endpoint_url) as proxy:
        yield proxy


def proxied_connection(proxy: FaultyS3Proxy, s3_server: LocalS3) -> dict[str, Any]:
    """The S3 server's connection with the proxy as its endpoint; the client's retries are the
    provider's default, as a deployment's connection has them."""
    connection = s3_server.connection()
    connection["extra"] = {**connection["extra"], "endpoint_url": proxy.endpoint_url}
    return connection


def expected_columns(written: Written) -> list[tuple[str, str, int, int, int]]:
    return [(c.name, c.sum, c.numeric, c.blank, c.non_numeric) for c in written.expected]


def found_columns(result: dict[str, Any]) -> list[tuple[str, str, int, int, int]]:
    return [
        (c["name"], c["sum"], c["numeric_cells"], c["blank_cells"], c["non_numeric_cells"])
        for c in result["columns"]
    ]


def is_exact(stored: StoredResult | None, source: SourceFile) -> bool:
    return (
        stored is not None
        and stored.outcome is Outcome.SUMS
        and stored.rows == source.written.rows
        and stored.bytes_read == source.written.bytes
        and found_columns(stored.result) == expected_columns(source.written)
    )


def record(fault_table: list[dict[str, Any]], **row: Any) -> None:
    """One row of the csv_column_sums section: ``requests`` made, ``right`` answers (the file's
    exact sums, or ``source_changed`` where the file was replaced), ``wrong`` (a result, but not
    the right one), ``lost`` (no result), ``rows_per_request`` (results rows, each request's)."""
    fault_table.append({"pipeline": PIPELINE, **row})


def assert_resumed_where_each_get_stopped(gets: list[Get]) -> None:
    """Each GET asks from the byte the ones before it delivered: never from the start again.

    After a cut or a refused GET that is exactly where the answer stopped; after a reset, the
    client's TCP stack drops what it had received and not yet handed over, so the next GET may
    start short of what the proxy sent, though never before where the reset GET began.
    """
    for before, after in pairwise(gets):
        delivered = before.start + before.sent
        if before.fault is Fault.RESET:
            assert before.start <= after.start <= delivered, (before, after)
        else:
            assert after.start == delivered, (before, after)


# --- storage: the task's body against S3 through the proxy ----------------------------------------


@pytest.fixture
def sums_db(
    cluster: LocalPostgres,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    airflow_home: Path,
    proxy: FaultyS3Proxy,
    s3_server: LocalS3,
) -> Iterator[str]:
    """A fresh results database as ``warehouse_db``, and the proxied S3 connection: the conninfo."""
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{PROXIED_CONN_ID.upper()}", json.dumps(proxied_connection(proxy, s3_server))
    )
    with warehouse_db(cluster, monkeypatch, request, "sums_") as database:
        yield cluster.conninfo(database)


def spec(source: SourceFile, task_id: str) -> SumsSpec:
    return SumsSpec(
        location=source.location,
        local_root=None,
        aws_conn_id=PROXIED_CONN_ID,
        conn_id="warehouse_db",
        processes=1,
        task_id=task_id,
    )


def stored_rows(conninfo: str) -> dict[str, StoredResult]:
    with psycopg.connect(conninfo) as conn:
        task_ids = [task_id for (task_id,) in conn.execute("SELECT task_id FROM column_sums.results")]
        return {task_id: results.load_result(conn, task_id) for task_id in task_ids}


def test_an_s3_download_cut_reset_and_refused_mid_file_is_resumed_and_stored_exactly(
    sums_db: str, files: dict[str, SourceFile], proxy: FaultyS3Proxy, fault_table: list[dict[str, Any]]
) -> None:
    source = files["cut"]
    faults = (Fault.CUT, Fault.RESET, Fault.SLOW_DOWN, Fault.INTERNAL_ERROR, Fault.CUT)
    proxy.inject(BUCKET, source.key, *faults)

    figures = tasks.sum_file(spec(source, "cut-mid-file"))

    rows = stored_rows(sums_db)
    assert list(rows) == ["cut-mid-file"]
    assert is_exact(rows["cut-mid-file"], source), rows["cut-mid-file"]
    assert [get.fault for get in proxy.gets] == [*faults, None]
    assert_resumed_where_each_get_stopped(proxy.gets)
    assert len({get.if_match for get in proxy.gets}) == 1, "every GET pinned the version opened"
    # Each cut or reset body is one resumption of ours; botocore retried the 503 and the 500 itself,
    # within the resumption after the reset, with the same Range.
    body_faults = sum(fault in (Fault.CUT, Fault.RESET) for fault in faults)
    assert figures["resumes"] == rows["cut-mid-file"].resumes == body_faults
    record(
        fault_table,
        ran_under="harness",
        fault="storage cut mid-file",
        injection="proxy before S3: body cut half-way, reset half-way, 503 SlowDown, 500 InternalError, "
        f"cut again ({len(faults)} faults on {len(proxy.gets)} GETs of a {source.written.bytes:,}-byte file)",
        behaviour=f"{body_faults} ranged GETs, each from the last byte received (If-Match the ETag); "
        "botocore retried the 503 and the 500 within one; one try, sums stored",
        requests=1,
        right=1,
        wrong=0,
        lost=0,
        rows_per_request="1",
        resumes=body_faults,
        tries="1",
    )


def test_an_s3_object_replaced_mid_read_is_answered_source_changed_not_mixed(
    sums_db: str, files: dict[str, SourceFile], proxy: FaultyS3Proxy, fault_table: list[dict[str, Any]]
) -> None:
    source = files["replaced"]
    proxy.inject(BUCKET, source.key, Fault.STALL)
    replacement = Path(source.written.path).read_bytes() + b"1,x,2,3,4,5,6,7,8,9\n"

    with ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(tasks.sum_file, spec(source, "replaced-mid-read"))
        proxy.wait_until_stalled()
        s3_hook(S3_CONN_ID).get_conn().put_object(Bucket=BUCKET, Key=source.key, Body=replacement)
        proxy.release()
        figures = running.result(timeout=120)

    assert (figures["outcome"], figures["problem"]) == ("problem", "source_changed")
    rows = stored_rows(sums_db)
    assert list(rows) == ["replaced-mid-read"]
    stored = rows["replaced-mid-read"]
    assert (stored.outcome, stored.result["code"], stored.rows) == (Outcome.PROBLEM, "source_changed", None)
    assert "nothing of the two versions was mixed" in stored.result["message"]
    stalled, refused = proxy.gets
    assert (stalled.fault, stalled.status, refused.status) == (Fault.STALL, 206, 412)
    assert refused.start == stalled.sent, "the resumption asked for the old version from its last byte"
    record(
        fault_table,
        ran_under="harness",
        fault="object replaced mid-read",
        injection="the GET held after half the body; the object replaced on the S3 server; the GET cut",
        behaviour="the ranged GET with If-Match the old ETag got 412: source_changed stored, no sums of "
        "two versions; the task succeeded (the requester's to resubmit)",
        requests=1,
        right=1,
        wrong=0,
        lost=0,
        rows_per_request="1",
        resumes=1,
        tries="1",
    )


# --- under Airflow: one deployment for the module ----------------------------------------------


@dataclass
class SumsAirflow:
    components: LocalAirflow
    api: AirflowApi
    warehouse: str  # conninfo
    proxy: FaultyS3Proxy

    def client(self) -> ColumnSumsClient:
        return ColumnSumsClient(self.components.url, ADMIN_USER, ADMIN_PASSWORD)

    def stored(self) -> dict[str, list[StoredResult]]:
        """Every results row, by task id (a list: a second row of one request would show)."""
        rows: dict[str, list[StoredResult]] = {}
        with psycopg.connect(self.warehouse) as conn:
            for (task_id,) in conn.execute("SELECT task_id FROM column_sums.results"):
                rows.setdefault(task_id, []).append(results.load_result(conn, task_id))
        return rows

    def sum_file_instance(self, run_id: str) -> dict[str, Any]:
        [ti] = [ti for ti in self.api.task_instances(DAG_ID, run_id) if ti["task_id"] == "sum_file"]
        return ti


@pytest.fixture(scope="module")
def sums_airflow(
    cluster: LocalPostgres,
    s3_server: LocalS3,
    files: dict[str, SourceFile],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SumsAirflow]:
    state = tmp_path_factory.mktemp("sums_faults_airflow")
    for name in (WAREHOUSE, METADATA):
        cluster.drop_database(name)
        cluster.create_database(name)
    env = environment_without()
    with FaultyS3Proxy(s3_server.endpoint_url) as proxy:
        env |= {
            "AIRFLOW_CONN_WAREHOUSE_DB": warehouse_connection(cluster.port, WAREHOUSE, str(cluster.password)),
            f"AIRFLOW_CONN_{PROXIED_CONN_ID.upper()}": json.dumps(proxied_connection(proxy, s3_server)),
            f"AIRFLOW_VAR_{SETTINGS_VARIABLE.upper()}": json.dumps({"aws_conn_id": PROXIED_CONN_ID}),
            "AIRFLOW_CONN_SMTP_DEFAULT": smtp_connection(free_port()),
            "AIRFLOW_VAR_ALERT_RECIPIENTS": "oncall@sums-faults.test",
            # Production's number of retries, without production's minutes between them.
            "AIRFLOW__PIPELINES__RETRY_DELAY_SECONDS": "1",
            # Only the runs the rows make: no other DAG's scheduled run competing for two cores.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        }
        airflow = LocalAirflow.on_free_ports(
            home=state / "airflow",
            metadata_url=cluster.airflow_metadata_url(METADATA),
            admin_password=ADMIN_PASSWORD,
            # Every other DAG stays paused; csv_column_sums is on from its first parse (its own flag).
            dags_paused_at_creation=True,
            base_env=env,
        )
        with airflow:
            api = airflow.wait_until_ready([DAG_ID])
            yield SumsAirflow(airflow, api, cluster.conninfo(WAREHOUSE), proxy)
    for name in (WAREHOUSE, METADATA):
        cluster.drop_database(name)


def test_a_task_killed_mid_read_is_retried_by_airflow_and_stores_the_exact_sums_once(
    sums_airflow: SumsAirflow, files: dict[str, SourceFile], fault_table: list[dict[str, Any]]
) -> None:
    airflow, source = sums_airflow, files["killed"]
    airflow.proxy.gets.clear()
    airflow.proxy.inject(BUCKET, source.key, Fault.STALL)
    run_id = airflow.api.trigger(DAG_ID, conf={"location": source.location})
    airflow.proxy.wait_until_stalled(timeout_s=RUN_TIMEOUT_S)
    killed = wait_for(
        lambda: running_with_pid(airflow.sum_file_instance(run_id)), timeout_s=60, what="the task's pid"
    )

    os.kill(task_process(airflow.components, killed), signal.SIGKILL)
    airflow.proxy.release()  # the killed reader's GET: nobody reads it any more

    assert airflow.api.wait_for_run(DAG_ID, run_id, timeout_s=RUN_TIMEOUT_S) == "success"
    ti = airflow.sum_file_instance(run_id)
    assert (ti["state"], ti["try_number"]) == ("success", 2)
    [stored] = airflow.stored()[run_id]
    assert is_exact(stored, source), stored
    assert stored.try_number == 2
    first, retried = airflow.proxy.gets
    assert (first.fault, retried.fault, retried.start) == (Fault.STALL, None, 0)
    record(
        fault_table,
        ran_under="airflow",
        fault="worker killed mid-task (SIGKILL)",
        injection="the task's process (the task instance's pid, LocalExecutor) killed with SIGKILL while "
        "its S3 GET was held after half the body",
        behaviour="Airflow marked the try failed and retried it 1 s later; the new try read the file "
        "from its first byte (a new process has no position) and replaced nothing: one row, try 2",
        requests=1,
        right=1,
        wrong=0,
        lost=0,
        rows_per_request="1",
        resumes=stored.resumes,
        tries="sum_file 2",
    )


RESTART_HELD = ("restart-1", "restart-2")


def test_the_api_server_restarted_while_requests_run_loses_none_and_answers_the_same_tokens(
    sums_airflow: SumsAirflow, files: dict[str, SourceFile], fault_table: list[dict[str, Any]]
) -> None:
    airflow = sums_airflow
    client = airflow.client()
    token = client.login()
    # Two requests held mid-read for the whole restart (the proxy faults one object at a time, so
    # each is submitted once its object's stall is armed), a third read whole whenever it runs.
    submitted: dict[str, SourceFile] = {}
    for count, name in enumerate(RESTART_HELD, 1):
        airflow.proxy.inject(BUCKET, files[name].key, Fault.STALL)
        submitted[client.submit(files[name].location)] = files[name]
        airflow.proxy.wait_until_stalled(count, timeout_s=RUN_TIMEOUT_S)
    submitted[client.submit(files["restart-3"].location)] = files["restart-3"]
    before = client.in_progress()
    assert 2 <= before["in_progress"] <= len(submitted), before

    airflow.components.restart("api-server")
    airflow.components.wait_until_ready([DAG_ID])

    # The token issued before the restart is still good: the secret is the deployment's, not the process's.
    answer = requests.get(
        f"{airflow.components.url}{URL_PREFIX}/in-progress",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert 2 <= answer.json()["in_progress"] <= len(submitted)
    airflow.proxy.release()
    answers = {task_id: client.wait(task_id, timeout_s=RUN_TIMEOUT_S) for task_id in submitted}
    assert {task_id: answer["state"] for task_id, answer in answers.items()} == dict.fromkeys(
        submitted, "success"
    )
    wait_for(lambda: client.in_progress()["in_progress"] == 0, timeout_s=60, what="no request in progress")
    stored = airflow.stored()
    tries = {task_id: airflow.sum_file_instance(task_id)["try_number"] for task_id in submitted}
    for task_id, source in submitted.items():
        assert len(stored[task_id]) == 1, task_id
        assert is_exact(stored[task_id][0], source), task_id
        assert found_columns(answers[task_id]["result"]) == expected_columns(source.written)
    record(
        fault_table,
        ran_under="airflow",
        fault="API server restarted while tasks run",
        injection=f"{len(submitted)} requests POSTed, 2 of them held mid-read; the api-server's process "
        "group stopped (SIGTERM) and started again; the held reads then cut",
        behaviour="the API answered again with the tokens issued before; "
        + restart_tries(tries, held_count=len(RESTART_HELD))
        + "; every request finished with the exact sums, one row each; the in-progress count read 0 "
        "afterwards",
        requests=len(submitted),
        right=len(submitted),
        wrong=0,
        lost=0,
        rows_per_request=", ".join(str(len(stored[task_id])) for task_id in submitted),
        resumes=sum(stored[task_id][0].resumes for task_id in submitted),
        tries=", ".join(f"sum_file {count}" for count in tries.values()),
    )


# --- helpers ------------------------------------------------------------------------------------


def restart_tries(tries: dict[str, int], *, held_count: int) -> str:
    """What the tries say about the restart, in words: which requests needed a second try.

    The api-server also serves the execution API, through which a task's process reports that it
    starts, heartbeats and ends: a try that must report while it is down fails, and Airflow
    retries it. Which tries fall in that window is the machine's timing, so it is measured here,
    not asserted.
    """
    held, others = list(tries.values())[:held_count], list(tries.values())[held_count:]
    parts = [
        "the reads held through the restart kept their first try"
        if all(count == 1 for count in held)
        else "a held read lost its try with the execution API (served by the api-server) and was retried"
    ]
    if any(count > 1 for count in others):
        parts.append(
            "the request that was starting while the api-server was down could not report its start "
            "(the execution API is served there) and Airflow retried it"
        )
    return ", ".join(parts)


def running_with_pid(task_instance: dict[str, Any]) -> dict[str, Any] | None:
    return task_instance if task_instance["state"] == "running" and task_instance["pid"] else None


def task_process(airflow: LocalAirflow, task_instance: dict[str, Any]) -> int:
    """The pid of the task instance's own process, checked to be that before anyone kills it.

    Under the LocalExecutor a worker (forked by the scheduler, in its process group) supervises
    the task in a child process titled ``airflow worker -- <task instance id>``; that child's pid
    is the one Airflow records. Killing it is what the kernel's OOM killer does to a task.
    """
    pid = task_instance["pid"]
    title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    parent = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    assert task_instance["id"] in title, f"pid {pid} is not the task's process: {title!r}"
    assert os.getpgid(parent) == airflow.component_pids()["scheduler"], "not this deployment's"
    return pid


def wait_for(condition: Callable[[], T | None], *, timeout_s: float, what: str) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.5)
    raise TimeoutError(f"{what}: not there in {timeout_s:.0f} s")
