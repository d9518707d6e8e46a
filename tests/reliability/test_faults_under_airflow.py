"""Rows of the fault table under the real executor: Airflow itself retries, triggers and fails.

``test_faults.py`` runs each fault through a harness that models Airflow (immediate retries,
trigger rules re-coded by hand). This module runs a representative subset through Airflow: one
deployment for the whole module (api-server, scheduler, dag-processor and triggerer with the
LocalExecutor, PostgreSQL metadata; see ``devservices.airflow_cluster``), the DAG as deployed,
with its retries (3, here 1 s apart, exponential: ``[pipelines] retry_delay_seconds``), its
trigger rules and its watcher task. Faults are injected through real means: the simulator's
fault rules and data defects, a connection changed through Airflow's REST API, a task process
killed with SIGKILL.

Each row's truth is the harness's run of the same day from the same source data, in a database
of its own (the ``deployment`` fixture); the row compares what Airflow's run left in its
warehouse with it (rows lost, rows doubled, the day's figures), counts the report emails and
the failure alerts the SMTP sink received, and records the run type, the run's state and each
task's state and try number as Airflow recorded them. ``docs/RELIABILITY.md`` (``make
reliability``) shows these rows in a section of their own, marking which rows ran where.

The deployment starts with its DAGs paused, as production's do. The first thing it runs is
the scheduler's own run of yesterday (``scheduled_run``), with an API fault injected before
the DAG is unpaused; every other row depends on that fixture, so no scheduled run competes
with them, whatever order they run in.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest

from devservices.airflow_cluster import AirflowApi, LocalAirflow
from devservices.environment import environment_without
from devservices.postgres import LocalPostgres
from devservices.simulator import SimulatorServer
from devservices.smtp_sink import SmtpSink
from include.learning_platform.warehouse import migrate_schema
from tests.conftest import CLIENT, CLIENT_KEY
from tests.include.learning_platform.stages import DAG_TASKS, WATCHER
from tests.reliability.conftest import (
    API_ATTEMPTS,
    RECORDS_PER_DAY,
    Deployment,
    holding_lock,
    smtp,
    wait_until_blocked,
)
from tests.reliability.harness import ALERT_SUBJECT, DayState, Outcome
from tests.test_end_to_end import api_connection, received, smtp_connection, warehouse_connection

T = TypeVar("T")

# Airflow's start (migrating a fresh metadata database) falls in the first test's time.
pytestmark = pytest.mark.timeout(900)

DAG_ID = "learning_platform_etl"
TASK_ORDER = (*DAG_TASKS, WATCHER)
API_CONN_ID = "learning_platform_api"
REPORT_VARIABLE = "learning_platform_report"
EXECUTOR = "LocalExecutor"
WAREHOUSE, METADATA = "airflow_warehouse", "airflow_metadata"
ADMIN_PASSWORD = "faults-Admin-pw-3"
# Generous: a run is about a minute on a busy two-core machine; waiting longer costs nothing.
RUN_TIMEOUT_S = 600
# Days of the manual rows, one each, so that each row reads only its own day's rows and mail.
OUTAGE_DAY, KILLED_DAY, REFUSED_DAY, GATE_DAY = (date(2026, 11, day) for day in (20, 21, 22, 23))


@dataclass(frozen=True)
class AirflowRun:
    """A DAG run as Airflow recorded it: its type and state, each task's state and last try."""

    run_id: str
    run_type: str
    state: str
    day: date
    tasks: dict[str, tuple[str, int]]

    def state_of(self, task_id: str) -> str:
        return self.tasks[task_id][0]

    def tries(self, task_id: str) -> int:
        return self.tasks[task_id][1]

    def behaviour(self) -> str:
        """What Airflow did, in a few words: the run's state, tries beyond the first, failures."""
        retried = [f"{task} {tries} tries" for task, (_, tries) in self.tasks.items() if tries > 1]
        failed = [task for task, (state, _) in self.tasks.items() if state == "failed" and task != WATCHER]
        parts = [f"{self.run_type} run {self.state}", ", ".join(retried) or "no task retried"]
        if failed:
            parts.append("failed for good: " + ", ".join(failed))
        if self.state_of(WATCHER) == "failed":
            parts.append(f"{WATCHER} failed the run")
        return "; ".join(parts)

    def as_row(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "run_type": self.run_type,
            "state": self.state,
            "tasks": {task: {"state": state, "tries": tries} for task, (state, tries) in self.tasks.items()},
        }


@dataclass
class Executor:
    """The module's Airflow, with the warehouse its tasks write and the outbox its mail reaches."""

    components: LocalAirflow
    api: AirflowApi
    warehouse: str  # conninfo
    outbox: Path
    api_connection: dict[str, Any]
    report_settings: dict[str, Any]

    def restore_configuration(self) -> None:
        """The API connection and the report Variable as the deployment defines them."""
        self.api.put_connection(API_CONN_ID, self.api_connection)
        self.api.put_variable(REPORT_VARIABLE, json.dumps(self.report_settings))

    def trigger(self, day: date) -> str:
        # The logical date is the day processed (the DAG's timetable).
        return self.api.trigger(DAG_ID, conf={}, logical_date=f"{day.isoformat()}T00:00:00Z")

    def finished(self, run_id: str) -> AirflowRun:
        self.api.wait_for_run(DAG_ID, run_id, timeout_s=RUN_TIMEOUT_S)
        return self.observe(run_id)

    def observe(self, run_id: str) -> AirflowRun:
        run = self.api.dag_run(DAG_ID, run_id)
        task_instances = self.api.task_instances(DAG_ID, run_id)
        return AirflowRun(
            run_id=run_id,
            run_type=run["run_type"],
            state=run["state"],
            day=datetime.fromisoformat(run["data_interval_start"]).date(),
            # In the DAG's order, whatever order the API lists them in.
            tasks={
                ti["task_id"]: (ti["state"], ti["try_number"])
                for ti in sorted(task_instances, key=lambda ti: TASK_ORDER.index(ti["task_id"]))
            },
        )

    def alerts(self, run_id: str) -> list[EmailMessage]:
        return [
            message
            for message in received(self.outbox)
            if message["Subject"].startswith(ALERT_SUBJECT) and run_id in message["Subject"]
        ]

    def state(self, day: date) -> DayState:
        return DayState.read(self.warehouse, day, outbox=self.outbox)


@pytest.fixture(scope="module")
def executor(
    cluster: LocalPostgres, simulator_server: SimulatorServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Executor]:
    state = tmp_path_factory.mktemp("faults_under_airflow")
    for name in (WAREHOUSE, METADATA):
        cluster.drop_database(name)
        cluster.create_database(name)
    warehouse = cluster.conninfo(WAREHOUSE)
    with psycopg.connect(warehouse) as conn:
        migrate_schema(conn)
    with SmtpSink(state / "outbox") as sink:
        env = environment_without()
        env |= {
            "AIRFLOW_CONN_LEARNING_PLATFORM_DB": warehouse_connection(
                cluster.port, WAREHOUSE, str(cluster.password)
            ),
            "AIRFLOW_CONN_SMTP_DEFAULT": smtp_connection(sink.port),
            "AIRFLOW_VAR_ALERT_RECIPIENTS": "oncall@airflow-faults.test",
            # Production's number of retries, without production's minutes between them.
            "AIRFLOW__PIPELINES__RETRY_DELAY_SECONDS": "1",
        }
        airflow = LocalAirflow.on_free_ports(
            home=state / "airflow",
            metadata_url=cluster.airflow_metadata_url(METADATA),
            admin_password=ADMIN_PASSWORD,
            dags_paused_at_creation=True,
            base_env=env,
        )
        with airflow:
            executor = Executor(
                airflow,
                airflow.wait_until_ready([DAG_ID]),
                warehouse,
                sink.outbox,
                # In the metadata database, not the environment (which would take precedence), so
                # that a row can change them through the REST API as an operator would.
                api_connection=json.loads(
                    api_connection(
                        simulator_server.base_url,
                        CLIENT,
                        CLIENT_KEY,
                        read_timeout=2,
                        retry_attempts=API_ATTEMPTS,
                    )
                ),
                report_settings={"recipients": ["analysts@airflow-faults.test"], "local_dir": str(state)},
            )
            executor.restore_configuration()
            yield executor
    for name in (WAREHOUSE, METADATA):
        cluster.drop_database(name)


@dataclass(frozen=True)
class ScheduledRun:
    run: AirflowRun
    faults_left: list[int | None]
    requests: int


SCHEDULED_FAULT = {"kind": "error", "status": 503, "times": 3}


@pytest.fixture(scope="module")
def scheduled_run(executor: Executor, simulator_server: SimulatorServer) -> ScheduledRun:
    """Unpause the DAG with a 503 burst armed: the run the scheduler then creates, finished.

    With ``catchup=False`` the scheduler creates the run of the last complete interval,
    yesterday's, as soon as the DAG is unpaused.
    """
    simulator_server.reset()
    simulator_server.configure(records_per_day=RECORDS_PER_DAY, faults=[SCHEDULED_FAULT])
    executor.api.set_paused(DAG_ID, paused=False)

    def created() -> str | None:
        runs = [run for run in executor.api.dag_runs(DAG_ID) if run["run_type"] == "scheduled"]
        return runs[0]["dag_run_id"] if runs else None

    try:
        run = executor.finished(wait_for(created, timeout_s=RUN_TIMEOUT_S, what="the scheduled run"))
        stats = simulator_server.stats()
    finally:
        simulator_server.reset()
    return ScheduledRun(run, [fault["times_left"] for fault in stats["faults"]], stats["requests"]["total"])


@pytest.fixture
def airflow(executor: Executor, scheduled_run: ScheduledRun, simulator: SimulatorServer) -> Executor:
    """The deployment, unpaused, with its configuration as defined (a row may have changed it)."""
    executor.restore_configuration()
    return executor


def reference(deployment: Deployment, day: date) -> DayState:
    """What the harness's run of the day from the same source data leaves: the row's truth."""
    with smtp(deployment):
        run = deployment.run(day)
    assert run.succeeded, run.errors
    return deployment.state(day)


def record(
    fault_table: list[dict[str, Any]],
    run: AirflowRun,
    outcome: Outcome,
    *,
    fault: str,
    injection: str,
    alerts: int,
    detail: str = "",
    **extra: Any,
) -> None:
    fault_table.append(
        {
            "fault": fault,
            "injection": injection,
            "behaviour": detail + run.behaviour(),
            "ran_under": "airflow",
            "executor": EXECUTOR,
            "airflow": run.as_row(),
            "alerts": alerts,
            **asdict(outcome),
            **extra,
        }
    )


def assert_exact(outcome: Outcome, *, emails: int = 1) -> None:
    assert outcome.rows_lost == 0
    assert outcome.rows_doubled == 0
    assert outcome.stats_equal
    assert outcome.emails == emails


# --- the rows -----------------------------------------------------------------------------------


def test_the_schedulers_own_run_of_yesterday_rides_out_a_5xx_burst(
    scheduled_run: ScheduledRun, airflow: Executor, deployment: Deployment, fault_table
) -> None:
    run = scheduled_run.run
    yesterday = {datetime.now(UTC).date() - timedelta(days=days) for days in (1, 2)}  # midnight may pass
    expected = reference(deployment, run.day)
    outcome = Outcome.compare(expected, airflow.state(run.day))
    alerts = airflow.alerts(run.run_id)

    assert run.run_type == "scheduled"
    assert run.day in yesterday
    assert run.run_id == f"scheduled__{run.day.isoformat()}"
    assert scheduled_run.faults_left == [0], "the fault was not injected"
    assert run.state == "success", f"see the logs in {airflow.components.home}"
    assert all(run.state_of(task) == "success" for task in DAG_TASKS)
    assert run.tries("extract") == 1, "three 503s are retried within the try"
    assert scheduled_run.requests == 24 + 3, "one request per hourly window, and the 3 answered 503"
    assert run.state_of(WATCHER) == "skipped"
    assert alerts == []
    record(
        fault_table,
        run,
        outcome,
        fault="API: 5xx burst",
        injection="simulator fault rule: 3 answers 503 in a row, armed before the DAG was unpaused",
        alerts=len(alerts),
        detail=f"retried within extract's try ({scheduled_run.requests} requests for 24 hourly windows); ",
    )
    assert_exact(outcome)


def test_an_api_outage_longer_than_a_try_is_retried_by_airflow_and_the_day_ends_exact(
    airflow: Executor, simulator: SimulatorServer, deployment: Deployment, fault_table
) -> None:
    expected = reference(deployment, OUTAGE_DAY)
    simulator.configure(faults=[{"kind": "error", "status": 503, "times": API_ATTEMPTS}])
    requests_before = simulator.stats()["requests"]["total"]
    run = airflow.finished(airflow.trigger(OUTAGE_DAY))
    requests_made = simulator.stats()["requests"]["total"] - requests_before
    outcome = Outcome.compare(expected, airflow.state(OUTAGE_DAY))
    alerts = airflow.alerts(run.run_id)

    assert [fault["times_left"] for fault in simulator.stats()["faults"]] == [0]
    assert run.state == "success", f"see the logs in {airflow.components.home}"
    assert run.tries("extract") == 2, "the first try used up its attempts, Airflow's retry healed"
    assert requests_made == API_ATTEMPTS + 24, "the first window's attempts, then the whole day"
    assert all(run.state_of(task) == "success" for task in DAG_TASKS)
    assert alerts == [], "a try that will be retried sends no alert"
    record(
        fault_table,
        run,
        outcome,
        fault="API: 5xx outage longer than a try",
        injection=f"simulator fault rule: {API_ATTEMPTS} answers 503 in a row "
        f"(a window's {API_ATTEMPTS} attempts)",
        alerts=len(alerts),
        detail=f"extract's first try used up a window's attempts, Airflow's retry fetched the day "
        f"({requests_made} requests for 24 hourly windows); ",
    )
    assert_exact(outcome)


def test_a_task_process_killed_mid_load_is_retried_by_airflow_and_the_day_ends_exact(
    airflow: Executor, deployment: Deployment, fault_table
) -> None:
    expected = reference(deployment, KILLED_DAY)
    # Taken before the run starts (no task before load touches attempts), so that load surely
    # waits on it with its transaction open, however fast the tasks before it are.
    with holding_lock(airflow.warehouse, "attempts"):
        run_id = airflow.trigger(KILLED_DAY)
        wait_until_blocked(airflow.warehouse, RUN_TIMEOUT_S, application_name=f"{DAG_ID}.load")
        [load] = [ti for ti in airflow.api.task_instances(DAG_ID, run_id) if ti["task_id"] == "load"]
        assert (load["state"], load["try_number"]) == ("running", 1)
        os.kill(task_process(airflow, load), signal.SIGKILL)
    run = airflow.finished(run_id)
    outcome = Outcome.compare(expected, airflow.state(KILLED_DAY))
    alerts = airflow.alerts(run.run_id)

    assert run.state == "success", f"see the logs in {airflow.components.home}"
    assert run.tries("load") == 2
    assert all(run.state_of(task) == "success" for task in DAG_TASKS)
    assert alerts == []
    record(
        fault_table,
        run,
        outcome,
        fault="worker killed mid-task (SIGKILL)",
        injection="load's task process (the task instance's pid, child of its LocalExecutor worker) "
        "killed with SIGKILL while its transaction waited on a lock of attempts",
        alerts=len(alerts),
    )
    assert_exact(outcome)


def test_refused_credentials_fail_at_once_with_one_alert_and_clearing_from_extract_is_exact(
    airflow: Executor, simulator: SimulatorServer, deployment: Deployment, fault_table
) -> None:
    expected = reference(deployment, REFUSED_DAY)
    requests_before = simulator.stats()["requests"]["total"]
    airflow.api.put_connection(API_CONN_ID, airflow.api_connection | {"password": "not-the-key"})
    failed = airflow.finished(airflow.trigger(REFUSED_DAY))
    requests_made = simulator.stats()["requests"]["total"] - requests_before
    nothing = airflow.state(REFUSED_DAY)
    alerts = airflow.alerts(failed.run_id)
    # What the error tells the operator to do: fix the key, then clear the run from extract.
    airflow.restore_configuration()
    airflow.api.clear_from(DAG_ID, failed.run_id, "extract")
    cleared = airflow.finished(failed.run_id)
    outcome = Outcome.compare(expected, airflow.state(REFUSED_DAY))

    assert failed.state == "failed"
    assert (failed.state_of("extract"), failed.tries("extract")) == ("failed", 1), "not retried"
    assert requests_made == 1
    downstream = DAG_TASKS[DAG_TASKS.index("extract") + 1 :]
    assert {failed.state_of(task) for task in downstream} == {"upstream_failed"}, "nothing ran on"
    assert failed.state_of(WATCHER) == "failed"
    assert (nothing.attempts, nothing.quarantine, nothing.stats, nothing.emails) == ({}, {}, None, 0)
    [alert] = alerts
    assert alert["Subject"].startswith(f"{ALERT_SUBJECT} {DAG_ID}.extract failed")
    assert cleared.state == "success", f"see the logs in {airflow.components.home}"
    assert cleared.tries("extract") == 2
    assert cleared.state_of(WATCHER) == "skipped"
    assert len(airflow.alerts(failed.run_id)) == 1, "the cleared run sent no further alert"
    record(
        fault_table,
        failed,
        outcome,
        fault="API: wrong credentials",
        injection="the API connection's password changed through Airflow's REST API; then restored "
        "and the run cleared from extract",
        alerts=len(alerts),
        after_clearing=cleared.as_row(),
    )
    assert_exact(outcome)


def test_a_failed_quality_gate_still_sends_the_report_and_the_watcher_fails_the_run(
    airflow: Executor, simulator: SimulatorServer, deployment: Deployment, fault_table
) -> None:
    # Half the day's records without a student id: far over the 5 % of rejections the gate allows.
    simulator.configure(defects={"user_id_null": 0.5})
    with smtp(deployment):
        harness = deployment.run(GATE_DAY)
    assert harness.states["check_quality"] == "failed", harness.errors
    expected = deployment.state(GATE_DAY)
    run = airflow.finished(airflow.trigger(GATE_DAY))
    outcome = Outcome.compare(expected, airflow.state(GATE_DAY))
    alerts = airflow.alerts(run.run_id)
    [report] = [
        message
        for message in received(airflow.outbox)
        if GATE_DAY.isoformat() in message["Subject"] and not message["Subject"].startswith(ALERT_SUBJECT)
    ]

    assert run.state == "failed"
    assert (run.state_of("check_quality"), run.tries("check_quality")) == ("failed", 1)
    assert (run.state_of("publish_report"), run.state_of("send_email")) == ("success", "success")
    assert run.state_of(WATCHER) == "failed"
    assert report["Subject"].endswith("UNRELIABLE figures")
    [alert] = alerts
    assert alert["Subject"].startswith(f"{ALERT_SUBJECT} {DAG_ID}.check_quality failed")
    record(
        fault_table,
        run,
        outcome,
        fault="quality gate failed: half the records without a student id",
        injection="simulator defect user_id_null at 50 % (the gate allows 5 % rejected)",
        alerts=len(alerts),
    )
    assert_exact(outcome)


# --- helpers ------------------------------------------------------------------------------------


def task_process(airflow: Executor, task_instance: dict[str, Any]) -> int:
    """The pid of the task instance's own process, checked to be that before anyone kills it.

    Under the LocalExecutor a worker (forked by the scheduler, in its process group) supervises
    the task in a child process titled ``airflow worker -- <task instance id>``; that child's
    pid is the one Airflow records for the task instance. Killing it is what the kernel's OOM
    killer does to a task; the supervisor survives and reports the failure.
    """
    pid = task_instance["pid"]
    title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    parent = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    assert task_instance["id"] in title, f"pid {pid} is not the task's process: {title!r}"
    assert os.getpgid(parent) == airflow.components.component_pids()["scheduler"], "not this deployment's"
    return pid


def wait_for(condition: Callable[[], T | None], *, timeout_s: float, what: str) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(1)
    raise TimeoutError(f"{what}: not there in {timeout_s:.0f} s")
