"""Each pipeline stage as the DAG runs it, alone in a fresh ``spawn`` process.

A stage's process opens its own warehouse connection (and API client), calls the same function
the DAG task calls, and reports back its wall time, its CPU time and the peak RSS of the whole
process (``VmHWM``: interpreter and imports included, as a task's process would have them).
Airflow's own per-task start-up (scheduling, supervisor, task runner, DAG parsing) is not part
of it: ``bench.airflow_overhead`` measures it apart.
"""

from __future__ import annotations

import resource
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from multiprocessing.connection import Connection
from typing import Any

import psycopg
import requests

from bench.services import checkpoint, in_fresh_process, peak_rss_kib
from include.common.intervals import Interval
from include.learning_platform.api import CHUNK_BYTES, STATISTICS_PATH, LearningPlatformClient, api_time
from include.learning_platform.extract import extract_interval
from include.learning_platform.load import load_interval
from include.learning_platform.stats import compute_daily_stats
from include.learning_platform.validate import validate_interval
from include.learning_platform.warehouse import migrate_schema

STAGES = ("extract", "validate", "load", "compute_stats")
# The DAG's default `window_minutes`.
WINDOW = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class StageJob:
    """What a stage process needs: plain values, as they cross a process boundary."""

    conninfo: str
    base_url: str
    client: str
    client_key: str
    day: date
    dag_run_id: str


@dataclass(frozen=True, slots=True)
class StageRun:
    name: str
    records: int  # rows the stage handled: fetched, checked, loaded, loaded
    wall_s: float  # the stage function, connection included
    cpu_s: float  # user + system time of the stage process during wall_s
    peak_rss_mb: float
    process_s: float  # spawn to exit, seen from the parent: wall_s plus interpreter start-up
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_per_s(self) -> float:
        return self.records / self.wall_s if self.wall_s > 0 else 0.0


@dataclass(frozen=True, slots=True)
class DayRun:
    """The four stages on one simulated day."""

    attempts: int  # the simulated day's size (extract fetches a few more: windows are closed)
    stages: tuple[StageRun, ...]

    @property
    def end_to_end_s(self) -> float:
        return sum(stage.wall_s for stage in self.stages)

    @property
    def peak_rss_mb(self) -> float:
        return max(stage.peak_rss_mb for stage in self.stages)

    def stage(self, name: str) -> StageRun:
        return next(stage for stage in self.stages if stage.name == name)


def prepare_warehouse(conninfo: str) -> None:
    """The DAG's `migrate` task, not measured."""
    with psycopg.connect(conninfo) as conn:
        migrate_schema(conn)


def run_day(job: StageJob, attempts: int) -> DayRun:
    """Run the stages on a day of ``attempts``, each in its own process, one after the other."""
    runs: list[StageRun] = []
    for name in STAGES:
        runs.append(run_stage(name, job))
    loaded = runs[2].records
    # compute_daily_stats returns nothing: it works on the rows load published.
    runs[3] = replace(runs[3], records=loaded)
    return DayRun(attempts=attempts, stages=tuple(runs))


def new_job(conninfo: str, base_url: str, client: str, client_key: str, day: date) -> StageJob:
    return StageJob(conninfo, base_url, client, client_key, day, dag_run_id=f"bench__{uuid.uuid4().hex[:12]}")


def run_stage(name: str, job: StageJob) -> StageRun:
    checkpoint(job.conninfo)
    started = time.perf_counter()
    outcome, exitcode = in_fresh_process(_stage_process, name, job, process_name=f"bench-{name}")
    process_s = time.perf_counter() - started
    if "error" in outcome:
        raise RuntimeError(f"stage {name} failed (exit code {exitcode}): {outcome['error']}")
    return StageRun(name=name, process_s=process_s, **outcome)


# --- inside the stage process -------------------------------------------------------------------


def _stage_process(name: str, job: StageJob, sender: Connection) -> None:
    try:
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        records, detail = _STAGE_FUNCTIONS[name](job)
        wall_s = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        outcome = {
            "records": records,
            "wall_s": wall_s,
            "cpu_s": cpu_s,
            "peak_rss_mb": peak_rss_kib() / 1024,
            "detail": detail,
        }
    except Exception as error:  # reported to the parent, which raises it there
        outcome = {"error": f"{type(error).__name__}: {error}"}
    sender.send(outcome)
    sender.close()


def _extract(job: StageJob) -> tuple[int, dict[str, Any]]:
    interval = Interval.for_day(job.day)
    with (
        psycopg.connect(job.conninfo) as conn,
        LearningPlatformClient(job.base_url, job.client, job.client_key) as client,
    ):
        result = extract_interval(conn, client, interval, window=WINDOW, dag_run_id=job.dag_run_id)
    return result.fetched, {"windows": result.windows}


def _validate(job: StageJob) -> tuple[int, dict[str, Any]]:
    with psycopg.connect(job.conninfo) as conn:
        result = validate_interval(conn, Interval.for_day(job.day))
    return result.checked, {
        "valid": result.valid,
        "rejected": result.rejected,
        "boundary_copies": result.boundary_copies,
    }


def _load(job: StageJob) -> tuple[int, dict[str, Any]]:
    with psycopg.connect(job.conninfo) as conn:
        result = load_interval(conn, Interval.for_day(job.day), dag_run_id=job.dag_run_id)
    return result.loaded, {"quarantined": result.quarantined, "flagged": result.flagged}


def _compute_stats(job: StageJob) -> tuple[int, dict[str, Any]]:
    with psycopg.connect(job.conninfo) as conn:
        compute_daily_stats(conn, Interval.for_day(job.day), dag_run_id=job.dag_run_id)
    return 0, {}


def _simulator_alone(job: StageJob) -> tuple[int, dict[str, Any]]:
    """The day's windows fetched one after the other, the bytes discarded unread: what the
    simulator alone costs, so extract's time can be split into the source's and its own."""
    interval = Interval.for_day(job.day)
    received = 0
    with requests.Session() as session:
        for part in interval.windows(WINDOW):
            params = {
                "client": job.client,
                "client_key": job.client_key,
                "start": api_time(part.start),
                "end": api_time(part.end),
            }
            with session.get(job.base_url + STATISTICS_PATH, params=params, stream=True) as response:
                response.raise_for_status()
                for chunk in response.iter_content(chunk_size=CHUNK_BYTES):
                    received += len(chunk)
    return 0, {"bytes": received}


_STAGE_FUNCTIONS: dict[str, Callable[[StageJob], tuple[int, dict[str, Any]]]] = {
    "simulator_alone": _simulator_alone,
    "extract": _extract,
    "validate": _validate,
    "load": _load,
    "compute_stats": _compute_stats,
}
