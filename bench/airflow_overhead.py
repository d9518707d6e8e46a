"""Airflow's own per-task start-up, measured in a real local Airflow beside the stage figures.

The stage figures time each stage function alone in a fresh process. Under Airflow each task
also waits for the scheduler to see its upstream tasks done and queue it, for the executor to
hand it to a supervisor, which forks the task process, which parses the DAG file before the task
runs and reports its state through the API server afterwards. None of that touches the day's
records (the tasks hand them over through the warehouse, never through XCom), so it does not
grow with the day, and the issue asks for it apart from the work.

So the flagship DAG runs here on a day of 1,000 attempts, where the tasks' own work is small,
in the deployment ``make airflow`` runs (``devservices.airflow_cluster.LocalAirflow``:
api-server, scheduler, dag-processor and triggerer, LocalExecutor), its metadata in a database
of the bench's PostgreSQL (default durability, like the warehouse's), its mail to an SMTP sink.
It is triggered through the REST API for two dates, one after the other: the first run pays for
cold caches, the second is the figure reported. Each task instance's timestamps, read back from
the API, split the task's share of the run into

* ready → queued: from its upstream tasks' end (the first task: the run's start) until the
  scheduler queued it;
* queued → start: the executor's worker starting a supervisor, which forks the task process and
  tells the API server it runs;
* start → end: the task process: task runner, DAG parsing, the task body's import of the
  pipeline's modules, the task's work, its state reported.

The DAG is a chain, so the tasks' totals add up to the run's time from its start to its last
task's end. The Airflow home (component and task logs) stays in ``<state dir>/airflow`` until
the next run.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

from devservices.airflow_cluster import AirflowApi, LocalAirflow
from devservices.environment import environment_without
from devservices.postgres import HOST, LocalPostgres
from devservices.simulator.process import SimulatorProcess
from devservices.smtp_sink import SmtpSink

log = logging.getLogger("bench")

DAG_ID = "learning_platform_etl"
# The DAG's tasks that the stage figures time without Airflow.
STAGE_TASKS = ("extract", "validate", "load", "compute_stats")
RECORDS_PER_DAY = 1_000
RUNS = 2
METADATA_DATABASE = "bench_airflow_metadata"
WAREHOUSE_DATABASE = "bench_airflow"
READY_TIMEOUT_S = 300
RUN_TIMEOUT_S = 300


@dataclass(frozen=True, slots=True)
class TaskTiming:
    task_id: str
    ready_to_queued_s: float
    queued_to_start_s: float
    start_to_end_s: float

    @property
    def total_s(self) -> float:
        return self.ready_to_queued_s + self.queued_to_start_s + self.start_to_end_s


@dataclass(frozen=True, slots=True)
class RunTiming:
    day: date
    run_id: str
    state: str
    triggered_to_running_s: float  # the scheduler taking up the queued run
    wall_s: float  # triggered to finished, as whoever triggered it waits
    tasks: tuple[TaskTiming, ...]  # in the order they ran


class RunFailed(RuntimeError):
    """The triggered run, or one of its tasks, did not succeed."""


def measure(
    server: LocalPostgres, simulator: SimulatorProcess, state_dir: Path, first_day: date
) -> dict[str, Any]:
    """The figures of ``RUNS`` runs from ``first_day`` on, or why there are none.

    Any failure is reported rather than raised: it must not cost the bench the figures it has
    already measured. Ctrl-C still stops the bench (after every component has been stopped).
    """
    home = state_dir / "airflow"
    try:
        start_s, runs = _run_dag(server, simulator, home, first_day)
    except Exception as error:
        log.warning("Airflow's per-task start-up not measured (logs in %s): %s", home, error)
        # A component's error carries its log's tail (logged above): the first line says what failed.
        headline = next(iter(str(error).strip().splitlines()), "")
        return not_measured(f"{type(error).__name__}: {headline} (logs in {home})")
    return _figures(start_s, runs)


def not_measured(why: str) -> dict[str, Any]:
    return {"measured": False, "why": why}


def _run_dag(
    server: LocalPostgres, simulator: SimulatorProcess, home: Path, first_day: date
) -> tuple[float, list[RunTiming]]:
    for name in (METADATA_DATABASE, WAREHOUSE_DATABASE):
        server.drop_database(name)
        server.create_database(name)
    simulator.set_records_per_day(RECORDS_PER_DAY)
    shutil.rmtree(home, ignore_errors=True)
    with SmtpSink(home / "outbox") as outbox:
        airflow = LocalAirflow.on_free_ports(
            home=home,
            metadata_url=server.airflow_metadata_url(METADATA_DATABASE),
            admin_password=secrets.token_urlsafe(16),
            base_env=_base_env(server, simulator, outbox.port),
        )
        log.info("Airflow's per-task start-up: starting a local Airflow (LocalExecutor) in %s", home)
        started = time.perf_counter()
        with airflow:
            api = airflow.wait_until_ready([DAG_ID], timeout_s=READY_TIMEOUT_S)
            start_s = time.perf_counter() - started
            log.info("  Airflow was up, the DAG parsed, in %.0f s", start_s)
            upstream = _upstream_tasks(api.tasks(DAG_ID))
            runs = []
            for offset in range(RUNS):
                run = _timed_run(api, upstream, first_day + timedelta(days=offset))
                log.info(
                    "  run %d of %d (%s, %d attempts): %.1f s from trigger to done, tasks %.1f s",
                    offset + 1,
                    RUNS,
                    run.day,
                    RECORDS_PER_DAY,
                    run.wall_s,
                    sum(task.total_s for task in run.tasks),
                )
                runs.append(run)
    return start_s, runs


def _base_env(server: LocalPostgres, simulator: SimulatorProcess, smtp_port: int) -> dict[str, str]:
    """Every component's environment: connections and variables as in ``make airflow``'s .env."""
    # Whatever Airflow or local-service settings the caller's shell holds are not this Airflow's.
    env = environment_without()
    warehouse = {
        "conn_type": "postgres",
        "host": HOST,
        "port": server.port,
        "schema": WAREHOUSE_DATABASE,
        "login": server.user,
        "password": server.password,
    }
    api = {
        "conn_type": "http",
        "host": simulator.base_url,
        "login": simulator.client,
        "password": simulator.client_key,
    }
    smtp = {
        "conn_type": "smtp",
        "host": HOST,
        "port": smtp_port,
        "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "airflow@localhost"},
    }
    env.update(
        {
            "AIRFLOW_CONN_LEARNING_PLATFORM_DB": json.dumps(warehouse),
            "AIRFLOW_CONN_LEARNING_PLATFORM_API": json.dumps(api),
            "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(smtp),
            "AIRFLOW_VAR_LEARNING_PLATFORM_REPORT": json.dumps({"recipients": ["analysts@localhost"]}),
            "AIRFLOW_VAR_ALERT_RECIPIENTS": "data-team@localhost",
            # A failing task ends the measurement at once, not after production's retry delays.
            "AIRFLOW__PIPELINES__TASK_RETRIES": "0",
            # Only the triggered runs: the scheduled interval's run would compete for the cores.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        }
    )
    return env


def _upstream_tasks(tasks: list[dict[str, Any]]) -> dict[str, set[str]]:
    upstream: dict[str, set[str]] = {task["task_id"]: set() for task in tasks}
    for task in tasks:
        for downstream in task["downstream_task_ids"] or ():
            upstream[downstream].add(task["task_id"])
    return upstream


def _timed_run(api: AirflowApi, upstream: dict[str, set[str]], day: date) -> RunTiming:
    # The logical date picks the day (the DAG's timetable); noon keeps clear of a scheduled run's.
    run_id = api.trigger(DAG_ID, conf={}, logical_date=f"{day.isoformat()}T12:00:00Z")
    state = api.wait_for_run(DAG_ID, run_id, timeout_s=RUN_TIMEOUT_S)
    # A clean run skips its last task, mark_run_failed (it runs only after a failure): no timings.
    instances = {ti["task_id"]: ti for ti in api.task_instances(DAG_ID, run_id) if ti["state"] != "skipped"}
    unsuccessful = {task_id: ti["state"] for task_id, ti in instances.items() if ti["state"] != "success"}
    if state != "success" or unsuccessful:
        raise RunFailed(f"the run of {day} ended {state}, tasks not successful: {unsuccessful or 'none'}")
    run = next(run for run in api.dag_runs(DAG_ID) if run["dag_run_id"] == run_id)
    run_start = _time(run["start_date"])
    end = {task_id: _time(ti["end_date"]) for task_id, ti in instances.items()}
    timings = []
    for task_id, ti in instances.items():
        ready = max((end[name] for name in upstream[task_id]), default=run_start)
        queued, started = _time(ti["queued_when"]), _time(ti["start_date"])
        timings.append(
            TaskTiming(
                task_id=task_id,
                ready_to_queued_s=(queued - ready).total_seconds(),
                queued_to_start_s=(started - queued).total_seconds(),
                start_to_end_s=(end[task_id] - started).total_seconds(),
            )
        )
    triggered = _time(run["queued_at"])
    return RunTiming(
        day=day,
        run_id=run_id,
        state=state,
        triggered_to_running_s=(run_start - triggered).total_seconds(),
        wall_s=(_time(run["end_date"]) - triggered).total_seconds(),
        tasks=tuple(sorted(timings, key=lambda timing: _time(instances[timing.task_id]["start_date"]))),
    )


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _figures(start_s: float, runs: list[RunTiming]) -> dict[str, Any]:
    warm = {task.task_id: task.total_s for task in runs[-1].tasks}
    stage_tasks_s = sum(warm[name] for name in STAGE_TASKS)
    return {
        "measured": True,
        "airflow": version("apache-airflow"),
        "executor": "LocalExecutor",
        "records_per_day": RECORDS_PER_DAY,
        "start_s": round(start_s, 1),
        # The last run's: the first one's also include cold caches.
        "per_task_s": round(stage_tasks_s / len(STAGE_TASKS), 3),
        "stage_tasks_s": round(stage_tasks_s, 3),
        "all_tasks_s": round(sum(warm.values()), 3),
        "runs": [
            {
                "date": run.day.isoformat(),
                "run_id": run.run_id,
                "state": run.state,
                "triggered_to_running_s": round(run.triggered_to_running_s, 3),
                "wall_s": round(run.wall_s, 3),
                "tasks": {
                    task.task_id: {
                        "ready_to_queued_s": round(task.ready_to_queued_s, 3),
                        "queued_to_start_s": round(task.queued_to_start_s, 3),
                        "start_to_end_s": round(task.start_to_end_s, 3),
                        "total_s": round(task.total_s, 3),
                    }
                    for task in run.tasks
                },
            }
            for run in runs
        ],
    }
