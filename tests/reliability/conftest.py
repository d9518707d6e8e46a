"""Fixtures of the fault table: a PostgreSQL cluster the tests may stop, configured runs, the table.

Every fault test adds its row to ``fault_table``; at the end of the session the rows are
written to ``<artifacts>/reliability/faults.json`` (``table_file.TABLE_FILE``), from which
``python -m tests.reliability.report`` writes docs/RELIABILITY.md (``make reliability`` does both).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from devservices.postgres import LocalPostgres, free_port
from devservices.simulator import SimulatorServer
from devservices.smtp_sink import SmtpSink
from include.learning_platform.warehouse import migrate_schema
from tests.conftest import CLIENT, CLIENT_KEY
from tests.reliability import table_file, workers
from tests.reliability.harness import DayRun, DayState
from tests.test_end_to_end import api_connection, smtp_connection

RECORDS_PER_DAY = 2000
# Attempts per API request within one try (the connection's retry_attempts): the outage rows
# are sized against it.
API_ATTEMPTS = 4
DB_PASSWORD = "reliability-password"


@pytest.fixture(scope="module", autouse=True)
def _workers_warm_up() -> None:
    """Start the fork server of the workers first: its imports overlap the module's set-up."""
    workers.warm_up()


@pytest.fixture(scope="session")
def fault_table(pytestconfig: pytest.Config) -> Iterator[list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    yield rows
    table_file.finish_session(pytestconfig, rows)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    """A cluster of the module's own, so that stopping it disturbs no other test."""
    server = LocalPostgres(
        state_dir=tmp_path_factory.mktemp("reliability_pg"), port=free_port(), password=DB_PASSWORD
    )
    server.start()
    yield server
    server.destroy()


def record_harness_row(
    fault_table: list[dict[str, Any]],
    *,
    pipeline: str,
    fault: str,
    injection: str,
    behaviour: str,
    outcome: Any,
    **figures: Any,
) -> None:
    """One row of a pipeline's harness fault table: the fault, what it did, the measured outcome
    (a dataclass) and ``figures`` the outcome derives (its count of rejects or quarantined lines)."""
    fault_table.append(
        {
            "pipeline": pipeline,
            "ran_under": "harness",
            "fault": fault,
            "injection": injection,
            "behaviour": behaviour,
            **asdict(outcome),
            **figures,
        }
    )


@dataclass
class FaultDatabase:
    """A fresh database of one test's, which the connection ``warehouse_db`` names while it runs."""

    cluster: LocalPostgres
    database: str

    @property
    def conninfo(self) -> str:
        return self.cluster.conninfo(self.database)


@contextmanager
def warehouse_db(
    cluster: LocalPostgres, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, prefix: str
) -> Iterator[str]:
    """A fresh database named after the test, as ``warehouse_db`` (and alerts that can be sent, for
    the pipelines' migrate_schema, which refuses a run whose failure nobody would hear of)."""
    database = prefix + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:12]
    cluster.drop_database(database)
    cluster.create_database(database)
    connection = {"conn_type": "postgres", "host": "127.0.0.1", "port": cluster.port}
    connection |= {"schema": database, "login": cluster.user, "password": cluster.password}
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_DB", json.dumps(connection))
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_connection(free_port()))
    monkeypatch.setenv("AIRFLOW_VAR_ALERT_RECIPIENTS", "oncall@reliability.test")
    yield database
    cluster.drop_database(database)


class Deployment:
    """The connections and Variables of one test's runs, and readers of what they left."""

    def __init__(self, cluster: LocalPostgres, database: str, outbox: Path, smtp_port: int) -> None:
        self.cluster = cluster
        self.database = database
        self.outbox = outbox
        self.smtp_port = smtp_port

    @property
    def conninfo(self) -> str:
        return self.cluster.conninfo(self.database)

    def run(self, day: date, **options: Any) -> DayRun:
        return DayRun(day, **options).run()

    def state(self, day: date, *, sheet_rows: int | None = None) -> DayState:
        return DayState.read(self.conninfo, day, outbox=self.outbox, sheet_rows=sheet_rows)


@pytest.fixture
def simulator(simulator_server: SimulatorServer) -> Iterator[SimulatorServer]:
    simulator_server.reset()
    simulator_server.configure(records_per_day=RECORDS_PER_DAY)
    yield simulator_server
    simulator_server.reset()


@pytest.fixture
def deployment(
    airflow_home: Path,
    cluster: LocalPostgres,
    simulator: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Deployment]:
    """A fresh warehouse database and outbox; connections as a deployment's environment gives them.

    The SMTP sink is not started here: ``with smtp(deployment)`` does, so a test can keep the
    server down.
    """
    database = "w_" + str(abs(hash(request.node.nodeid)))[:12]
    cluster.drop_database(database)
    cluster.create_database(database)
    with psycopg.connect(cluster.conninfo(database)) as conn:
        migrate_schema(conn)
    smtp_port = free_port()
    connection = {"conn_type": "postgres", "host": "127.0.0.1", "port": cluster.port}
    connection |= {"schema": database, "login": "postgres", "password": DB_PASSWORD}
    monkeypatch.setenv("AIRFLOW_CONN_LEARNING_PLATFORM_DB", json.dumps(connection))
    # Short timeouts: a stalled answer must trip the client within the test's patience.
    monkeypatch.setenv(
        "AIRFLOW_CONN_LEARNING_PLATFORM_API",
        api_connection(simulator.base_url, CLIENT, CLIENT_KEY, read_timeout=2, retry_attempts=API_ATTEMPTS),
    )
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_connection(smtp_port))
    report = {"recipients": ["analysts@reliability.test"], "local_dir": str(tmp_path / "reports")}
    monkeypatch.setenv("AIRFLOW_VAR_LEARNING_PLATFORM_REPORT", json.dumps(report))
    monkeypatch.setenv("AIRFLOW_VAR_ALERT_RECIPIENTS", "oncall@reliability.test")
    monkeypatch.delenv("AIRFLOW_CONN_LEARNING_PLATFORM_SHEETS", raising=False)
    yield Deployment(cluster, database, tmp_path / "outbox", smtp_port)
    cluster.drop_database(database)


def smtp(deployment: Deployment) -> SmtpSink:
    return SmtpSink(deployment.outbox, host="127.0.0.1", port=deployment.smtp_port)


class holding_lock:
    """Hold an ACCESS EXCLUSIVE lock on a warehouse table until the block ends."""

    def __init__(self, conninfo: str, table: str) -> None:
        self._conn = psycopg.connect(conninfo)
        self._table = table

    def acquire(self) -> holding_lock:
        statement = sql.SQL("LOCK TABLE learning_platform.{} IN ACCESS EXCLUSIVE MODE")
        self._conn.execute(statement.format(sql.Identifier(self._table)))
        return self

    def __enter__(self) -> holding_lock:
        if not self._conn.info.transaction_status:  # not acquired yet
            self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._conn.rollback()
            self._conn.close()
        except psycopg.OperationalError:
            pass  # the server was stopped under us: the lock went with it


def wait_until_blocked(
    conninfo: str, timeout_s: float = 60, *, application_name: str = "%", count: int = 1
) -> None:
    """Wait until ``count`` sessions of the database wait for a lock: the tasks are mid-transaction.

    ``application_name`` (a LIKE pattern) picks whose sessions: tasks name theirs ``dag_id.task_id``.
    """
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(conninfo, autocommit=True) as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND application_name LIKE %s",
                (application_name,),
            ).fetchone()[0]
            if waiting >= count:
                return
            time.sleep(0.05)
    raise TimeoutError(f"{count} session(s) named {application_name} never waited for a lock")
