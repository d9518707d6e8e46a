"""The distributed engine, on one machine: the flagship DAG under the CeleryExecutor.

A real deployment's components (api-server, scheduler, dag-processor, triggerer) with PostgreSQL
metadata, Debian's Redis as the broker and two ``airflow celery worker`` processes run two days
triggered through the REST API at once. The test shows that every task went through Celery (the
result backend has the Celery task the executor recorded for the task instance) to one of the
two workers (the task instance's hostname, shown in the UI, is that worker's own address: see
``CeleryWorkers``; and that worker's log shows it received the Celery task), and that the
warehouse then holds exactly what ``airflow dags test`` (everything in one process) writes for
the same day from the same source data. ``csv_folder_import`` and ``usage_files_ingest`` then
run once each, their mapped tasks spread over both workers, and their results are judged by their
generators' manifests. Last, ``csv_column_sums`` takes a burst of requests from several clients
at once through its REST API (the plugin on the same API server), which both workers share.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from devservices.airflow_cluster import ADMIN_USER, AirflowApi, CeleryWorkers, LocalAirflow
from devservices.column_sums_client import ColumnSumsClient
from devservices.csv_columns import Written, write_csv
from devservices.energy_certificates import generate
from devservices.environment import PROJECT_ROOT, airflow_environment, environment_without
from devservices.postgres import LocalPostgres, free_port
from devservices.redis_server import LocalRedis
from devservices.s3_server import LocalS3, create_bucket, s3_hook
from devservices.simulator import SimulatorConfig, SimulatorServer
from devservices.sizes import parse_size
from devservices.smtp_sink import SmtpSink
from devservices.usage_writer import Manifest, write_files
from include.column_sums.settings import DAG_ID as SUMS_DAG_ID
from include.column_sums.settings import SETTINGS_VARIABLE as SUMS_SETTINGS_VARIABLE
from tests.conftest import CLIENT, CLIENT_KEY, S3_CONN_ID, wait_for
from tests.include.learning_platform.stages import DAG_TASKS, WATCHER
from tests.reliability.usage_ingest_harness import StoreOutcome
from tests.security.secret_scan import Scan, encoded_forms
from tests.test_csv_folder_import import expected_rejects, file_key, read_import
from tests.test_end_to_end import api_connection, received, smtp_connection, warehouse_connection

pytestmark = pytest.mark.timeout(900)
log = logging.getLogger(__name__)

DAG_ID = "learning_platform_etl"
# Triggered together, so that work is there for both workers at the same time.
DATES = ("2026-11-10", "2026-11-11")
# The flagship's task whose outlet is an asset alias (see celery_runs).
ALIAS_EMITTER = "load"
FINISHED_TASK_STATES = {"success", "failed", "upstream_failed", "skipped"}
COMPARED_DATE = DATES[0]
RECORDS_PER_DAY = 3000
WORKERS = 2
ADMIN_PASSWORD = "celery-Admin-pw-7"
CELERY_RECIPIENT, LOCAL_RUN_RECIPIENT = "analysts@celery.test", "analysts@local-run.test"
CELERY_DATABASE, LOCAL_DATABASE, METADATA_DATABASE = "celery_warehouse", "local_warehouse", "celery_metadata"

CSV_DAG_ID = "csv_folder_import"
CSV_TABLE = "imports.energy_certificates"
# One data file of about 5 MiB cut into 1 MiB chunks: five mapped import tasks, more than the two
# slots of one worker. A Celery worker takes no more messages than it has slots (Airflow's
# prefetch multiplier is 1 and tasks are acknowledged late), so the chunks queued together
# cannot all go to one worker.
CSV_DROP_SIZE, CSV_CHUNK_MB = "5.5MB", 1

USAGE_DAG_ID = "usage_files_ingest"
# Six files: three of 2.5 MB, each split into three ranges of 1 MiB, and three of 0.5 MB: twelve
# mapped process_range tasks, more than one worker's two slots (the DAG runs four at a time).
USAGE_BIG, USAGE_SMALL = 2_500_000, 500_000
USAGE_CONF = {"range_mb": 1, "batch_mb": 1, "max_batch_consumers": 5_000}

# csv_column_sums: a burst of requests from clients of the role "user", each submitting at once
# (a thread each), spread over small generated files: four on the local root both workers share,
# one on the S3 server.
SUMS_CLIENTS = {f"client{number}": ("user", f"celery-sums-client{number}-pw") for number in range(1, 6)}
SUMS_PER_CLIENT = 10
SUMS_BUCKET = "column-sums-celery"
SUMS_FILES = {"in/a.csv": (25, 1), "in/b.csv": (31, 2), "in/c.csv": (40, 3), "in/d.csv": (12, 4)}
SUMS_S3_KEY = "burst/e.csv"
SUMS_ROWS = 1_000
SUMS_TIMEOUT_S = 300

# The published tables, each with the column that places a row in a day.
PUBLISHED_TABLES = {
    "attempts": "source_window_start",
    "quarantined_attempts": "source_window_start",
    "load_batches": "interval_start",
    "daily_stats": "stats_date",
    "daily_course_stats": "stats_date",
    "daily_quarantine_reasons": "stats_date",
    "daily_quality_checks": "stats_date",
}
# Which run wrote a row and when, not what it holds: these differ between any two runs.
RUN_SPECIFIC_COLUMNS = {
    "quarantine_id",
    "dag_run_id",
    "loaded_at",
    "quarantined_at",
    "computed_at",
    "checked_at",
    "landing_id",  # a new one for every landing
}


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("celery")


@pytest.fixture(scope="module")
def databases(postgres_server: LocalPostgres) -> Iterator[LocalPostgres]:
    names = (CELERY_DATABASE, LOCAL_DATABASE, METADATA_DATABASE)
    for name in names:
        postgres_server.drop_database(name)
        postgres_server.create_database(name)
    yield postgres_server
    for name in names:
        postgres_server.drop_database(name)


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorServer]:
    """A simulator of our own: the session's is reset by other tests, and both deployments of
    this module must see the same source data for as long as they run."""
    config = SimulatorConfig(client=CLIENT, client_key=CLIENT_KEY, records_per_day=RECORDS_PER_DAY)
    with SimulatorServer(config) as server:
        yield server


@pytest.fixture(scope="module")
def outbox(state: Path) -> Iterator[SmtpSink]:
    with SmtpSink(state / "outbox") as sink:
        yield sink


def sums_root(state: Path) -> Path:
    return state / "column_sums_root"


@pytest.fixture(scope="module")
def base_env(
    databases: LocalPostgres, simulator: SimulatorServer, outbox: SmtpSink, state: Path, s3_server: LocalS3
) -> dict[str, str]:
    """What every Airflow process gets, the Celery deployment's and the local run's alike."""
    env = environment_without()
    env.update(
        {
            "AIRFLOW_CONN_LEARNING_PLATFORM_DB": warehouse_connection(
                databases.port, CELERY_DATABASE, str(databases.password)
            ),
            "AIRFLOW_CONN_LEARNING_PLATFORM_API": api_connection(simulator.base_url, CLIENT, CLIENT_KEY),
            "AIRFLOW_CONN_SMTP_DEFAULT": smtp_connection(outbox.port),
            # csv_folder_import's destination: the same database, a schema of its own.
            "AIRFLOW_CONN_WAREHOUSE_DB": warehouse_connection(
                databases.port, CELERY_DATABASE, str(databases.password)
            ),
            "AIRFLOW_VAR_LEARNING_PLATFORM_REPORT": json.dumps({"recipients": [CELERY_RECIPIENT]}),
            "AIRFLOW_VAR_ALERT_RECIPIENTS": "oncall@celery.test",
            # Where the usage writers drop their files, as a deployment's Variable says it (the
            # store: warehouse_db, schema usage_ingest).
            "AIRFLOW_VAR_USAGE_FILES_INGEST": json.dumps(
                {"incoming": str(usage_incoming(state)), "archive": str(state / "usage" / "archive")}
            ),
            # csv_column_sums' files: a folder both workers read, and the S3 server; its results go
            # to warehouse_db (the default), in a schema of their own.
            f"AIRFLOW_VAR_{SUMS_SETTINGS_VARIABLE.upper()}": json.dumps(
                {"local_root": str(sums_root(state)), "aws_conn_id": S3_CONN_ID}
            ),
            **s3_server.environment(S3_CONN_ID),
            "AIRFLOW__PIPELINES__TASK_RETRIES": "1",
            "AIRFLOW__PIPELINES__RETRY_DELAY_SECONDS": "1",
            # Only the runs the test triggers: no scheduled run competing for two cores.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        }
    )
    return env


@pytest.fixture(scope="module")
def local_run(
    base_env: dict[str, str], databases: LocalPostgres, state: Path, migrated_airflow_db: Path
) -> Iterator[Future[int]]:
    """``airflow dags test`` of the compared date into a warehouse of its own, in the background.

    Started before the Celery deployment so that the two overlap; SQLite metadata (the session's
    migrated database, copied) is enough for a run in one process.
    """
    home = state / "local_airflow"
    home.mkdir()
    shutil.copyfile(migrated_airflow_db, home / "airflow.db")
    env = airflow_environment(home, base=base_env)
    env["AIRFLOW_CONN_LEARNING_PLATFORM_DB"] = warehouse_connection(
        databases.port, LOCAL_DATABASE, str(databases.password)
    )
    # Its report goes to the same SMTP sink: another recipient tells it from the Celery runs'.
    env["AIRFLOW_VAR_LEARNING_PLATFORM_REPORT"] = json.dumps({"recipients": [LOCAL_RUN_RECIPIENT]})
    airflow = str(Path(sys.executable).parent / "airflow")
    log_file = state / "local_run.log"

    def run() -> int:
        with log_file.open("ab") as out:
            return subprocess.run(
                [airflow, "dags", "test", DAG_ID, COMPARED_DATE],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=PROJECT_ROOT,
                timeout=600,
            ).returncode

    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool.submit(run)


@pytest.fixture(scope="module")
def broker(state: Path) -> Iterator[LocalRedis]:
    with LocalRedis(free_port(), state / "redis") as redis:
        yield redis


@pytest.fixture(scope="module")
def airflow_cluster(
    base_env: dict[str, str],
    databases: LocalPostgres,
    broker: LocalRedis,
    state: Path,
    local_run: Future[int],
) -> Iterator[tuple[LocalAirflow, AirflowApi]]:
    metadata_url = databases.airflow_metadata_url(METADATA_DATABASE)
    workers = CeleryWorkers(
        broker_url=broker.url, count=WORKERS, concurrency=2, first_log_server_port=free_ports(WORKERS)
    )
    airflow = LocalAirflow.on_free_ports(
        home=state / "airflow",
        metadata_url=metadata_url,
        admin_password=ADMIN_PASSWORD,
        celery=workers,
        base_env=base_env,
        users=SUMS_CLIENTS,
    )
    with airflow:
        yield airflow, airflow.wait_until_ready([DAG_ID, CSV_DAG_ID, USAGE_DAG_ID, SUMS_DAG_ID])


@pytest.fixture(scope="module")
def celery_runs(airflow_cluster: tuple[LocalAirflow, AirflowApi]) -> dict[str, tuple[str, str]]:
    """Both dates' runs through the REST API, side by side: {date: (run id, final state)}.

    The second is triggered once the first's ``load`` has emitted through the DAG's asset alias.
    Airflow 3.3.2 records an alias's first association with an asset by a check, then an insert
    (``AssetManager._add_asset_alias_association``): two tasks emitting through the alias for the
    first time in the same instant fail one of them (UniqueViolation, no retry). A deployment can
    meet that once ever; this module's fresh metadata database would on every run whose two loads
    end together (seen once).
    """
    _, api = airflow_cluster
    # The logical date is the day processed (the DAG's timetable).
    first, *others = DATES
    run_ids = {first: api.trigger(DAG_ID, conf={}, logical_date=f"{first}T00:00:00Z")}
    wait_for(
        lambda: task_finished(api, run_ids[first], ALIAS_EMITTER),
        f"{ALIAS_EMITTER} of {run_ids[first]} to finish",
        timeout_s=600,
        poll_s=1,
    )
    for date in others:
        run_ids[date] = api.trigger(DAG_ID, conf={}, logical_date=f"{date}T00:00:00Z")
    return {
        date: (run_id, api.wait_for_run(DAG_ID, run_id, timeout_s=600)) for date, run_id in run_ids.items()
    }


def task_finished(api: AirflowApi, run_id: str, task_id: str) -> bool:
    states = {ti["task_id"]: ti["state"] for ti in api.task_instances(DAG_ID, run_id)}
    return states.get(task_id) in FINISHED_TASK_STATES


@pytest.fixture(scope="module")
def csv_drop(state: Path) -> tuple[Path, dict[str, Any]]:
    """One big data file (plus the generator's empty and header-mismatch files) and its manifest."""
    drop = state / "csv_drop"
    return drop, generate(drop, size=parse_size(CSV_DROP_SIZE), files=1, zipped=0, seed=21)


@pytest.fixture(scope="module")
def csv_run(
    airflow_cluster: tuple[LocalAirflow, AirflowApi],
    celery_runs: dict[str, tuple[str, str]],
    csv_drop: tuple[Path, dict[str, Any]],
) -> tuple[str, str]:
    """One import of the drop, triggered once the flagship's runs are done: (run id, final state).

    Alone on the workers, its chunks find every slot free; ``chunk_mb`` is no param of the form,
    the spec reads it from the run's conf.
    """
    _, api = airflow_cluster
    drop, _ = csv_drop
    conf = {"source": str(drop), "table": CSV_TABLE, "mode": "replace", "chunk_mb": CSV_CHUNK_MB}
    run_id = api.trigger(CSV_DAG_ID, conf=conf)
    return run_id, api.wait_for_run(CSV_DAG_ID, run_id, timeout_s=600)


def usage_incoming(state: Path) -> Path:
    return state / "usage" / "incoming"


@pytest.fixture(scope="module")
def usage_drop(state: Path) -> list[Manifest]:
    """Six usage files written the safe way, long settled, and their manifests."""
    incoming = usage_incoming(state)
    # An hour ago by the real clock: the scheduled sensor and claim_files read it.
    written = datetime.now(UTC) - timedelta(hours=1)
    return [
        write_files(incoming, files=3, size_bytes=size, consumers=5_000, seed=seed, mtime=written)
        for seed, size in ((31, USAGE_BIG), (32, USAGE_SMALL))
    ]


@pytest.fixture(scope="module")
def usage_run(
    airflow_cluster: tuple[LocalAirflow, AirflowApi], csv_run: tuple[str, str], usage_drop: list[Manifest]
) -> tuple[str, str]:
    """One ingest of the drop, once the import is done, so that its ranges find every slot free."""
    _, api = airflow_cluster
    run_id = api.trigger(USAGE_DAG_ID, conf=USAGE_CONF)
    return run_id, api.wait_for_run(USAGE_DAG_ID, run_id, timeout_s=600)


def test_every_task_ran_through_celery_on_one_of_the_workers(
    airflow_cluster, celery_runs, databases, outbox
) -> None:
    airflow, api = airflow_cluster
    assert airflow.celery is not None
    states = {date: state for date, (_, state) in celery_runs.items()}
    assert states == dict.fromkeys(DATES, "success"), f"see the logs in {airflow.home}"
    addresses = {airflow.celery.address(index): index for index in range(WORKERS)}
    run_ids = [run_id for run_id, _ in celery_runs.values()]
    task_instances = {date: api.task_instances(DAG_ID, run_id) for date, (run_id, _) in celery_runs.items()}
    celery_ids = celery_task_ids(databases.conninfo(METADATA_DATABASE), run_ids)
    worker_logs = [airflow.log_file(f"celery-worker-{index + 1}").read_text() for index in range(WORKERS)]
    ran_on: Counter[str] = Counter()
    for date, tis in task_instances.items():
        assert {ti["task_id"]: ti["state"] for ti in tis if ti["task_id"] == WATCHER} == {WATCHER: "skipped"}
        tis = [ti for ti in tis if ti["task_id"] != WATCHER]
        assert {ti["task_id"] for ti in tis} == set(DAG_TASKS)
        for ti in tis:
            where = f"{date} {ti['task_id']}"
            assert ti["state"] == "success", where
            # What the UI shows: the address of the worker that ran it (the machine's name otherwise).
            assert ti["hostname"] in addresses, f"{where} ran on {ti['hostname']}, not on a Celery worker"
            assert ti["queue"] == "default", where
            # The executor handed the task to Celery, whose result backend has it as started by a
            # worker. (Its SUCCESS may come a moment after the run's: the task instance's state
            # is reported before the worker's Celery task returns.)
            celery_id, celery_status = celery_ids[(ti["dag_run_id"], ti["task_id"])]
            assert celery_status in {"STARTED", "SUCCESS"}, where
            # The worker whose own log shows it received that Celery task is the one the task
            # instance names: two independent records of where it ran agree.
            received_by = [index for index, text in enumerate(worker_logs) if celery_id in text]
            assert received_by == [addresses[ti["hostname"]]], f"{where}: Celery task {celery_id}"
            ran_on[airflow.celery.hostname(addresses[ti["hostname"]])] += 1

    log.info("task instances per worker: %s", dict(ran_on))
    if len(ran_on) < WORKERS:
        # Which worker takes a message is Redis's and Celery's choice: not asserted, only told.
        warnings.warn(f"only {sorted(ran_on)} did work this time", stacklevel=1)
    subjects = [
        message["Subject"] for message in received(outbox.outbox) if message["To"] == CELERY_RECIPIENT
    ]
    assert sorted(re.search(r"\d{4}-\d{2}-\d{2}", subject)[0] for subject in subjects) == sorted(DATES), (
        "one report email per run"
    )


def test_one_csv_import_spreads_its_chunks_over_both_workers_and_publishes_the_manifest(
    airflow_cluster, csv_run, csv_drop, databases
) -> None:
    airflow, api = airflow_cluster
    assert airflow.celery is not None
    _, manifest = csv_drop
    run_id, state = csv_run
    assert state == "success", f"see the logs in {airflow.home}"

    [big_file] = [entry for entry in manifest["files"] if entry["good_rows"]]
    chunks = [
        ti
        for ti in api.task_instances(CSV_DAG_ID, run_id)
        if ti["task_id"] == "import_chunk" and big_file["path"] in (ti["rendered_map_index"] or "")
    ]
    expected_chunks = big_file["bytes"] // (CSV_CHUNK_MB * 1024 * 1024)
    assert len(chunks) >= expected_chunks >= WORKERS * 2, [ti["rendered_map_index"] for ti in chunks]
    assert all(ti["state"] == "success" for ti in chunks)
    workers = {airflow.celery.address(index) for index in range(WORKERS)}
    assert {ti["hostname"] for ti in chunks} == workers, "each worker imported chunks of the file"

    with psycopg.connect(databases.conninfo(CELERY_DATABASE)) as conn:
        imported = read_import(conn, CSV_TABLE)
    assert sum(imported.rows.values()) == manifest["totals"]["good_rows"]
    assert sum(imported.rows_of(file_key(big_file)).values()) == big_file["good_rows"]
    assert len(imported.rows_of(file_key(big_file))) == big_file["good_rows"], "no line imported twice"
    assert imported.latest_run_rejects == expected_rejects(manifest)


def test_one_usage_ingest_spreads_its_ranges_over_both_workers_and_adds_the_manifests_totals(
    airflow_cluster, usage_run, usage_drop, databases, state
) -> None:
    airflow, api = airflow_cluster
    assert airflow.celery is not None
    run_id, run_state = usage_run
    assert run_state == "success", f"see the logs in {airflow.home}"

    ranges = [ti for ti in api.task_instances(USAGE_DAG_ID, run_id) if ti["task_id"] == "process_range"]
    files = [entry for manifest in usage_drop for entry in manifest.files]
    conninfo = databases.conninfo(CELERY_DATABASE)
    with psycopg.connect(conninfo) as conn:
        planned = dict(
            conn.execute(
                "SELECT f.name, count(*) FROM usage_ingest.ranges"
                " JOIN usage_ingest.files AS f USING (file_id) GROUP BY f.name"
            ).fetchall()
        )
        claims = conn.execute("SELECT name, state, claimed_by FROM usage_ingest.files").fetchall()
        committers = conn.execute("SELECT DISTINCT committed_by FROM usage_ingest.batches").fetchall()
    assert sorted(planned.values()) == [1, 1, 1, 3, 3, 3], planned
    assert sorted(ti["rendered_map_index"] for ti in ranges) == sorted(
        f"{name} [{number}/{count}]" for name, count in planned.items() for number in range(1, count + 1)
    )
    assert all(ti["state"] == "success" for ti in ranges)
    workers = {airflow.celery.address(index) for index in range(WORKERS)}
    assert {ti["hostname"] for ti in ranges} == workers, "each worker processed ranges"

    # Every file claimed once, by this run, and done; every batch committed by it.
    assert sorted(claims) == sorted((entry.name, "done", run_id) for entry in files)
    assert committers == [(run_id,)]
    outcome = StoreOutcome.measure(conninfo, usage_drop)
    # No line lost or covered by two batches, every total and hourly sum to the unit.
    assert outcome.exact, outcome
    assert not any(usage_incoming(state).glob("*.usage")), "processed files stayed in incoming"
    assert len(list((state / "usage" / "archive").glob("*.usage"))) == len(files)


@dataclass(frozen=True)
class Sample:
    """One answer of ``/in-progress`` during the burst, between what the test knew before and after.

    The count is read in one instant of the API server's that the test cannot share: it lies
    after every POST answered before the call (their runs were committed before the 202) and
    before every POST begun after the answer, and runs finished before the call were finished at
    that instant too. So ``lowest <= in_progress <= highest`` must hold, whatever the timing.
    """

    answer: dict[str, int]
    acknowledged_before: int  # POSTs answered 202 before the call
    finished_before: int  # runs of the DAG finished before the call (metadata DB)
    begun_after: int  # POSTs begun by the time the answer came back
    finished_after: int  # runs finished once the answer came back

    @property
    def lowest(self) -> int:
        return max(self.acknowledged_before - self.finished_after, 0)

    @property
    def highest(self) -> int:
        return self.begun_after - self.finished_before


@dataclass
class SumsBurst:
    """What the burst did: each client's task ids with their files, the answers, the samples."""

    submitted: dict[str, dict[str, str]]  # client → {task id: location}
    answers: dict[str, dict[str, Any]]  # task id → the final GET /tasks/{id}
    listed: dict[str, dict[str, Any]]  # client → GET /tasks
    samples: list[Sample]
    after: dict[str, int]  # /in-progress once every task was finished
    seconds: float
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def locations(self) -> dict[str, str]:
        return {task_id: location for tasks in self.submitted.values() for task_id, location in tasks.items()}


@pytest.fixture(scope="module")
def sums_files(state: Path, s3_server: LocalS3) -> dict[str, Written]:
    """Location → what summing it must give: four files under the shared local root, one on S3."""
    root = sums_root(state)
    (root / "in").mkdir(parents=True)
    files = {
        location: write_csv(root / location, rows=SUMS_ROWS, columns=columns, seed=seed)
        for location, (columns, seed) in SUMS_FILES.items()
    }
    on_s3 = write_csv(state / "column_sums_s3.csv", rows=SUMS_ROWS, columns=22, seed=5)
    create_bucket(S3_CONN_ID, SUMS_BUCKET)
    s3_hook(S3_CONN_ID).get_conn().upload_file(on_s3.path, SUMS_BUCKET, SUMS_S3_KEY)
    files[f"s3://{SUMS_BUCKET}/{SUMS_S3_KEY}"] = on_s3
    return files


@pytest.fixture(scope="module")
def sums_burst(
    airflow_cluster: tuple[LocalAirflow, AirflowApi],
    usage_run: tuple[str, str],
    sums_files: dict[str, Written],
    databases: LocalPostgres,
) -> SumsBurst:
    """Every client POSTs its requests at once (a thread each) while the count is sampled; then
    each waits for its tasks. Made once the other DAGs' runs are done, so the workers are the
    burst's."""
    airflow, _ = airflow_cluster
    metadata = databases.conninfo(METADATA_DATABASE)
    locations = list(sums_files)
    posts = {"begun": 0, "acknowledged": 0}
    lock = threading.Lock()
    submitting = threading.Event()
    burst = SumsBurst({}, {}, {}, [], {}, 0.0)

    def submit(name: str) -> None:
        client = ColumnSumsClient(airflow.url, name, SUMS_CLIENTS[name][1])
        client.login()
        mine: dict[str, str] = {}
        for number in range(SUMS_PER_CLIENT):
            location = locations[(number + int(name.removeprefix("client"))) % len(locations)]
            with lock:
                posts["begun"] += 1
            mine[client.submit(location)] = location
            with lock:
                posts["acknowledged"] += 1
        with burst._lock:
            burst.submitted[name] = mine

    def sample() -> None:
        observer = ColumnSumsClient(airflow.url, ADMIN_USER, airflow.admin_password)
        observer.login()
        deadline = time.monotonic() + SUMS_TIMEOUT_S
        with psycopg.connect(metadata, autocommit=True) as conn:
            while submitting.is_set() or finished_runs(conn) < len(SUMS_CLIENTS) * SUMS_PER_CLIENT:
                if time.monotonic() > deadline:
                    return  # the burst's test says what was not finished
                with lock:
                    acknowledged = posts["acknowledged"]
                finished = finished_runs(conn)
                answer = observer.in_progress()
                with lock:
                    begun = posts["begun"]
                burst.samples.append(Sample(answer, acknowledged, finished, begun, finished_runs(conn)))
                # A pause between samples leaves the two cores to the workers; the bounds hold at any pace.
                time.sleep(0.2)

    started = time.monotonic()
    submitting.set()
    with ThreadPoolExecutor(max_workers=len(SUMS_CLIENTS) + 1) as pool:
        sampler = pool.submit(sample)
        clients = [pool.submit(submit, name) for name in SUMS_CLIENTS]
        try:
            for future in clients:
                future.result(timeout=SUMS_TIMEOUT_S)
        finally:
            submitting.clear()
        sampler.result(timeout=SUMS_TIMEOUT_S + 60)
    burst.seconds = time.monotonic() - started
    for name, tasks in burst.submitted.items():
        client = ColumnSumsClient(airflow.url, name, SUMS_CLIENTS[name][1])
        burst.answers |= {task_id: client.wait(task_id, timeout_s=SUMS_TIMEOUT_S) for task_id in tasks}
        burst.listed[name] = client.my_tasks()
    burst.after = ColumnSumsClient(airflow.url, ADMIN_USER, airflow.admin_password).in_progress()
    log.info(
        "%d requests in %.1f s, %d samples of the count",
        len(burst.answers),
        burst.seconds,
        len(burst.samples),
    )
    return burst


def test_a_burst_of_requests_from_five_clients_is_summed_exactly_once_each_on_both_workers(
    airflow_cluster, sums_burst: SumsBurst, sums_files: dict[str, Written], databases
) -> None:
    airflow, _ = airflow_cluster
    assert airflow.celery is not None
    locations = sums_burst.locations
    assert len(locations) == len(SUMS_CLIENTS) * SUMS_PER_CLIENT, "every POST got a task id of its own"

    # Every task ended success with the exact sums of its own file.
    for task_id, location in locations.items():
        answer = sums_burst.answers[task_id]
        assert (answer["state"], answer["location"]) == ("success", location), answer
        assert sums_columns(answer["result"]) == expected_sums(sums_files[location]), task_id

    # None lost, none run twice: one run per request and nothing else, one task instance each,
    # which succeeded at its first try (no earlier try in the history), and one results row each.
    with psycopg.connect(databases.conninfo(METADATA_DATABASE)) as conn:
        runs = conn.execute("SELECT run_id, state FROM dag_run WHERE dag_id = %s", (SUMS_DAG_ID,)).fetchall()
        instances = conn.execute(
            "SELECT run_id, task_id, try_number, state, hostname FROM task_instance WHERE dag_id = %s",
            (SUMS_DAG_ID,),
        ).fetchall()
        earlier_tries = conn.execute(
            "SELECT count(*) FROM task_instance_history WHERE dag_id = %s", (SUMS_DAG_ID,)
        ).fetchone()[0]
    assert sorted(runs) == sorted((task_id, "success") for task_id in locations)
    assert sorted(run_id for run_id, *_ in instances) == sorted(locations)
    assert {(task, tries, state) for _, task, tries, state, _ in instances} == {("sum_file", 1, "success")}
    assert earlier_tries == 0
    with psycopg.connect(databases.conninfo(CELERY_DATABASE)) as conn:
        stored = conn.execute("SELECT task_id, try_number FROM column_sums.results").fetchall()
    assert sorted(stored) == sorted((task_id, 1) for task_id in locations)

    # Both workers took some.
    ran_on = Counter(hostname for *_, hostname in instances)
    log.info("csv_column_sums tasks per worker: %s", dict(ran_on))
    assert set(ran_on) == {airflow.celery.address(index) for index in range(WORKERS)}, ran_on

    # Each client lists exactly its own requests.
    for name, tasks in sums_burst.submitted.items():
        listed = sums_burst.listed[name]
        assert listed["total_entries"] == SUMS_PER_CLIENT, name
        assert {task["task_id"]: task["state"] for task in listed["tasks"]} == dict.fromkeys(tasks, "success")


def test_the_in_progress_count_sampled_during_the_burst_is_within_what_was_submitted_and_finished(
    sums_burst: SumsBurst,
) -> None:
    samples = sums_burst.samples
    assert samples, "the count was never sampled"
    for sample in samples:
        answer = sample.answer
        assert answer["in_progress"] == answer["queued"] + answer["running"], sample
        assert sample.lowest <= answer["in_progress"] <= sample.highest, sample
    # The samples saw the burst, not only its end: some requests were in progress at a sample.
    assert max(sample.answer["in_progress"] for sample in samples) > 0
    assert sums_burst.after == {"queued": 0, "running": 0, "in_progress": 0}


def finished_runs(conn: psycopg.Connection) -> int:
    return conn.execute(
        "SELECT count(*) FROM dag_run WHERE dag_id = %s AND state IN ('success', 'failed')", (SUMS_DAG_ID,)
    ).fetchone()[0]


def expected_sums(written: Written) -> list[tuple[str, str, int, int, int]]:
    return [(c.name, c.sum, c.numeric, c.blank, c.non_numeric) for c in written.expected]


def sums_columns(result: dict[str, Any]) -> list[tuple[str, str, int, int, int]]:
    return [
        (c["name"], c["sum"], c["numeric_cells"], c["blank_cells"], c["non_numeric_cells"])
        for c in result["columns"]
    ]


def test_the_warehouse_holds_what_a_local_run_writes(celery_runs, local_run, databases, state) -> None:
    assert local_run.result(timeout=600) == 0, f"airflow dags test failed: see {state / 'local_run.log'}"

    celery = published_day(databases.conninfo(CELERY_DATABASE), COMPARED_DATE)
    local = published_day(databases.conninfo(LOCAL_DATABASE), COMPARED_DATE)

    [(fetched, loaded, quarantined)] = [
        (row["fetched"], row["loaded"], row["quarantined"]) for row in local["load_batches"]
    ]
    assert fetched > RECORDS_PER_DAY * 0.9
    assert loaded > 0
    assert quarantined > 0
    for table in PUBLISHED_TABLES:
        assert local[table], f"the local run wrote no {table}"
        assert celery[table] == local[table], _first_difference(table, celery[table], local[table])


def test_no_secret_in_the_log_folder_of_a_scheduler_run_deployment(
    airflow_cluster, celery_runs, databases
) -> None:
    """The secret scan of ``tests/security`` over what a deployment's scheduler and workers wrote:
    every task log under ``AIRFLOW_HOME/logs`` and every component's own log."""
    airflow, _ = airflow_cluster
    needles = {
        "API client key": encoded_forms(CLIENT_KEY),
        "warehouse and metadata database password": encoded_forms(str(databases.password)),
        "UI admin password": encoded_forms(ADMIN_PASSWORD),
        "JWT secret": encoded_forms((airflow.home / "jwt_secret").read_text().strip()),
    }
    files = [path for path in sorted((airflow.home / "logs").rglob("*")) if path.is_file()]
    files += sorted(airflow.home.glob("*.log"))
    scan = Scan(files=files)
    for path in files:
        scan.search(str(path.relative_to(airflow.home)), path.read_bytes(), needles)

    # The scan read what matters: every task's log of both runs, written by the workers.
    run_ids = [run_id for run_id, _ in celery_runs.values()]
    task_logs = {
        (run_id, task)
        for path in files
        for run_id in run_ids
        for task in DAG_TASKS
        if f"run_id={run_id}/" in str(path) and f"/task_id={task}/" in str(path)
    }
    assert len(task_logs) == len(run_ids) * len(DAG_TASKS), sorted(task_logs)
    assert {"scheduler.log", *(f"celery-worker-{index + 1}.log" for index in range(WORKERS))} <= {
        path.name for path in files
    }
    assert scan.found == []


def test_stopping_leaves_no_component_running(airflow_cluster) -> None:
    airflow, _ = airflow_cluster
    groups = airflow.component_pids()
    assert set(groups) == {"api-server", "scheduler", "dag-processor", "triggerer"} | {
        f"celery-worker-{index + 1}" for index in range(WORKERS)
    }

    airflow.stop()

    # stop() waits for each group's leader; SIGKILLed members may take a moment to be gone.
    deadline = time.monotonic() + 10
    while (left := {name: pids for name, pgid in groups.items() if (pids := live_members(pgid))}) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.2)
    assert not left, f"still running after stop: {left}"
    assert airflow.celery is not None
    ports = [airflow.api_port, airflow.triggerer_log_server_port] + [
        airflow.celery.first_log_server_port + index for index in range(WORKERS)
    ]
    assert all(port_is_closed(port) for port in ports)


# --- helpers ----------------------------------------------------------------------------------


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive ports that are free now."""
    while True:
        first = free_port()
        if all(not port_is_taken(first + offset) for offset in range(1, count)):
            return first


def port_is_taken(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("0.0.0.0", port))  # noqa: S104 - where the workers' log servers listen
        except OSError:
            return True
    return False


def port_is_closed(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def live_members(pgid: int) -> list[int]:
    """Processes of the group that are alive: not zombies, which no init may be reaping here."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        # After the command: state, ppid, pgrp.
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def celery_task_ids(conninfo: str, run_ids: list[str]) -> dict[tuple[str, str], tuple[str, str | None]]:
    """(run id, task id) → (the Celery task id the executor recorded, its state in the result backend)."""
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            "SELECT ti.run_id, ti.task_id, ti.external_executor_id, meta.status "
            "FROM task_instance AS ti LEFT JOIN celery_taskmeta AS meta "
            "ON meta.task_id = ti.external_executor_id "
            "WHERE ti.dag_id = %s AND ti.run_id = ANY(%s)",
            (DAG_ID, run_ids),
        ).fetchall()
    return {(run_id, task_id): (celery_id, status) for run_id, task_id, celery_id, status in rows}


def published_day(conninfo: str, day: str) -> dict[str, list[dict[str, Any]]]:
    """Every published row of ``day`` without its run-specific columns, in a stable order."""
    tables: dict[str, list[dict[str, Any]]] = {}
    with psycopg.connect(conninfo, options="-c TimeZone=UTC") as conn:
        for table, day_column in PUBLISHED_TABLES.items():
            columns = [
                name
                for (name,) in conn.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = 'learning_platform' AND table_name = %s ORDER BY ordinal_position",
                    (table,),
                )
                if name not in RUN_SPECIFIC_COLUMNS
            ]
            query = sql.SQL("SELECT {} FROM learning_platform.{} WHERE {}::date = %s ORDER BY {}").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.Identifier(table),
                sql.Identifier(day_column),
                sql.SQL(", ").join(sql.Literal(position) for position in range(1, len(columns) + 1)),
            )
            with conn.cursor(row_factory=psycopg.rows.dict_row) as cursor:
                tables[table] = cursor.execute(query, (day,)).fetchall()
    return tables


def _first_difference(table: str, celery: list[dict[str, Any]], local: list[dict[str, Any]]) -> str:
    for index, (ours, theirs) in enumerate(zip(celery, local, strict=False)):
        if ours != theirs:
            return f"{table} row {index}: Celery run {ours}, local run {theirs}"
    return f"{table}: {len(celery)} rows after the Celery run, {len(local)} after the local run"
