"""Fixtures shared by the whole suite: an isolated Airflow home, real local services."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Airflow reads its plugins folder once, when first imported, and the DAGs' timetable is only
# usable once the project's plugin registered it: set before anything imports Airflow.
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(Path(__file__).resolve().parents[1] / "plugins")

import gspread
import psycopg
import pytest

from devservices.environment import airflow_environment
from devservices.postgres import LocalPostgres, free_port
from devservices.s3_server import LocalS3
from devservices.simulator import SimulatorConfig, SimulatorServer
from include.common.google_sheets import client_from_service_account_info
from include.common.http import RetryPolicy
from include.learning_platform.api import LearningPlatformClient
from include.learning_platform.warehouse import SCHEMA, migrate_schema
from tests.fakes.google_sheets import FakeGoogleSheets, service_account_info
from tests.reliability import table_file

CLIENT = "test-client"
CLIENT_KEY = "test-key-Secret-42"
# The warehouse role of the integration tests: it owns the pipeline's schema and nothing else,
# as a DBA would set it up (README, "The database role").
PIPELINE_ROLE = "learning_platform_etl"
PIPELINE_PASSWORD = "etl-password"
# The Airflow connection id that the s3_server fixture defines for the session.
S3_CONN_ID = "test_s3"

AIRFLOW_HOME = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    """Point AIRFLOW_HOME at a throwaway folder before any test module is imported.

    Airflow reads AIRFLOW_HOME once, when it is first imported, and creates its folders there
    (``$HOME/airflow/logs`` by default). Test modules import it while being collected, before
    any fixture runs, so a fixture would be too late. Nothing above imports Airflow:
    ``tests/test_suite_isolation.py`` proves it.
    """
    home = Path(tempfile.mkdtemp(prefix="pytest-airflow-home-"))
    config.add_cleanup(lambda: shutil.rmtree(home, ignore_errors=True))
    config.stash[AIRFLOW_HOME] = home
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """An xdist worker finished (``make test`` runs two): keep the fault rows it recorded."""
    table_file.collect_from_worker(node.config, node.workeroutput)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """In xdist's controller, write the fault rows of every worker as one table."""
    table_file.write_collected(session.config)


@pytest.fixture(scope="session")
def airflow_home(pytestconfig: pytest.Config) -> Path:
    """The session's throwaway AIRFLOW_HOME: tests never touch a developer's Airflow state."""
    return pytestconfig.stash[AIRFLOW_HOME]


@pytest.fixture(scope="session")
def migrated_airflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite metadata database at this Airflow's schema: ``airflow db migrate`` once a session.

    The command costs 10-15 s of Airflow start-up. A test that needs an Airflow home of its own
    copies this file to ``<home>/airflow.db``, where Airflow's generated config looks for it.
    """
    home = tmp_path_factory.mktemp("migrated_airflow_home")
    base = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        env=airflow_environment(home, base=base),
        capture_output=True,
        check=True,
        timeout=300,
    )
    return home / "airflow.db"


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    """One real PostgreSQL cluster for the session (durability off: tests only)."""
    server = LocalPostgres(
        state_dir=tmp_path_factory.mktemp("postgres"),
        port=free_port(),
        password="test-password",
        fast=True,
    )
    server.start()
    yield server
    server.destroy()


def wait_for(
    condition: Callable[[], bool], what: str, *, timeout_s: float = 60, poll_s: float = 0.02
) -> None:
    """Poll ``condition`` until it holds.

    The deadline only turns a hang into a failure naming ``what`` (a TimeoutError); no test
    depends on how long the wait took.
    """
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting: {what}")
        time.sleep(poll_s)


@contextmanager
def schema_owner_database(
    server: LocalPostgres, test_id: str, *, prefix: str, schema: str, role: str, password: str
) -> Iterator[str]:
    """A fresh database for the test ``test_id``, ``schema`` granted to ``role``; dropped afterwards.

    Yields the database's name. The pipeline connects as ``role``, which owns its schema and may
    do nothing else, as in a deployment where a DBA created the schema for it.
    """
    name = prefix + hashlib.sha256(test_id.encode()).hexdigest()[:16]
    server.drop_database(name)
    server.create_database(name)
    server.grant_schema(name, schema, role, password)
    try:
        yield name
    finally:
        server.drop_database(name)


@pytest.fixture
def warehouse_database(postgres_server: LocalPostgres, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database per test, with the pipeline's schema granted to its role; dropped afterwards."""
    with schema_owner_database(
        postgres_server,
        request.node.nodeid,
        prefix="t_",
        schema=SCHEMA,
        role=PIPELINE_ROLE,
        password=PIPELINE_PASSWORD,
    ) as name:
        yield name


@pytest.fixture
def warehouse_conninfo(postgres_server: LocalPostgres, warehouse_database: str) -> str:
    """The fresh database as the pipeline's role: it owns its schema and may do nothing else."""
    return postgres_server.conninfo(warehouse_database, user=PIPELINE_ROLE, password=PIPELINE_PASSWORD)


@pytest.fixture
def admin_conninfo(postgres_server: LocalPostgres, warehouse_database: str) -> str:
    """The same database as a superuser, for what only a DBA does (or a test arranges)."""
    return postgres_server.conninfo(warehouse_database)


@pytest.fixture
def warehouse(warehouse_conninfo: str) -> Iterator[psycopg.Connection]:
    """A connection to a fresh warehouse with the learning platform schema migrated."""
    with psycopg.connect(warehouse_conninfo) as conn:
        migrate_schema(conn)
        yield conn


@pytest.fixture(scope="session")
def simulator_server() -> Iterator[SimulatorServer]:
    with SimulatorServer(SimulatorConfig(client=CLIENT, client_key=CLIENT_KEY)) as server:
        yield server


@pytest.fixture
def simulator(simulator_server: SimulatorServer) -> Iterator[SimulatorServer]:
    """The session's simulator, back at its start-up configuration for every test."""
    simulator_server.reset()
    yield simulator_server
    simulator_server.reset()


@pytest.fixture
def api_client(simulator: SimulatorServer) -> Iterator[LearningPlatformClient]:
    client = LearningPlatformClient(
        simulator.base_url,
        CLIENT,
        CLIENT_KEY,
        timeout=(2.0, 5.0),
        retry=RetryPolicy(attempts=4, initial_wait_s=0.05, max_wait_s=0.2, max_retry_after_s=2.0),
    )
    with client:
        yield client


@pytest.fixture
def google() -> Iterator[FakeGoogleSheets]:
    """Google's token endpoint and Sheets API, in memory; any other URL fails the request."""
    with FakeGoogleSheets.running() as fake:
        yield fake


@pytest.fixture
def gspread_client(google: FakeGoogleSheets) -> gspread.Client:
    """A real gspread client of a generated service account, talking to the fake."""
    return client_from_service_account_info(service_account_info())


@pytest.fixture(scope="session")
def s3_server() -> Iterator[LocalS3]:
    """A real S3 endpoint (moto's server) for the session; the connection S3_CONN_ID points at it.

    Tests keep to their own buckets (named after the test), so they need no reset between them.
    """
    with LocalS3() as server, pytest.MonkeyPatch.context() as patch:
        for name, value in server.environment(S3_CONN_ID).items():
            patch.setenv(name, value)
        yield server
