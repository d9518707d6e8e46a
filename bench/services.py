"""The services a benchmark run talks to: a throwaway PostgreSQL and the API simulator.

Both run in their own processes, so neither shares CPU time accounting with a measured stage.
PostgreSQL keeps its default durability (fsync, synchronous commit): the figures are those of a
real server, not of the tests' fast mode.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import multiprocessing.pool
import os
import resource
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psycopg

from bench.report import machine as machine_figures
from devservices.environment import postgres_connection_json
from devservices.postgres import HOST, LocalPostgres, free_port
from devservices.simulator.process import SimulatorProcess

log = logging.getLogger("bench")

SIMULATOR_CLIENT = "bench"
# Importing Airflow takes a worker 5-20 s on a busy 2-core machine; a worker that died meanwhile
# must not hang the run.
WARM_UP_TIMEOUT_S = 300


@contextmanager
def local_postgres(state_dir: Path) -> Iterator[LocalPostgres]:
    """A new cluster under ``state_dir``, destroyed on the way out (also on failure)."""
    server = LocalPostgres(
        state_dir=state_dir / "postgres",
        port=free_port(),
        password=secrets.token_urlsafe(16),
        fast=False,
    )
    try:
        server.start()
        yield server
    finally:
        server.destroy()


def measure_sizes(
    state_dir: Path, sizes: Sequence[int], measure_size: Callable[[LocalPostgres, int], dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Each size measured by ``measure_size`` on one new cluster; and the machine it ran on.

    Other work on the machine slows every lane, so the machine's figures include the 1-minute load
    average before and after the run.
    """
    load_before = os.getloadavg()[0]
    with local_postgres(state_dir) as server:
        points = [measure_size(server, size) for size in sizes]
        with psycopg.connect(server.conninfo()) as conn:
            (postgres_version,) = conn.execute("SHOW server_version").fetchone()
    machine = {
        **machine_figures(),
        "postgres": postgres_version,
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    return points, machine


def interrupt_on_sigterm() -> None:
    """SIGTERM cleans up as Ctrl-C does: the cluster, Airflow's components and lanes are not left behind."""
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def simulator_process(records_per_day: int, log_file: Path) -> SimulatorProcess:
    """The simulator on a free port, with a one-off key, logging warnings only."""
    return SimulatorProcess(
        host=HOST,
        port=free_port(),
        client=SIMULATOR_CLIENT,
        client_key=secrets.token_urlsafe(16),
        records_per_day=records_per_day,
        log_file=log_file,
        log_level="WARNING",
    )


def checkpoint(conninfo: str) -> None:
    """Start the next measurement from the same state as every other: no dirty pages left over.

    A 1M-attempt day writes gigabytes of WAL, so with default settings PostgreSQL checkpoints
    every 10-30 s; a measurement that happens to overlap one also pays for flushing what came
    before it, and for full-page images in its own WAL. Each stage and each alternative starts
    right after a CHECKPOINT (not timed), so that ratios compare like with like.
    """
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def in_fresh_process(
    target: Callable[..., None], *args: Any, process_name: str | None = None
) -> tuple[dict[str, Any], int | None]:
    """Run ``target(*args, sender)`` in a ``spawn``ed process; its one message, and its exit code.

    A fresh process measures only its own work (memory, CPU), never what the benchmark's own
    process had loaded. ``target`` sends one dict through ``sender``; a process that dies before
    it does reports ``{"error": ...}``.
    """
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=target, args=(*args, sender), name=process_name)
    process.start()
    sender.close()
    try:
        outcome = receiver.recv()
    except EOFError:
        outcome = {"error": "its process died before reporting"}
    process.join()
    return outcome, process.exitcode


def lane_outcome(lane: Callable[[], Any]) -> dict[str, Any]:
    """``lane()`` run in this process, for ``in_fresh_process``: its result and what it cost.

    ``{"result", "wall_s", "cpu_s", "children_cpu_s", "peak_rss_mb", "children_peak_rss_mb"}``;
    ``{"skipped": why}`` for a lane that cannot run on this machine (it raises NotImplementedError);
    ``{"error": ...}`` for any other failure, which the parent raises.
    """
    try:
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        result = lane()
        wall_s = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "result": result,
            "wall_s": wall_s,
            "cpu_s": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
            "children_cpu_s": children.ru_utime + children.ru_stime,
            "peak_rss_mb": peak_rss_kib() / 1024,
            # ru_maxrss of the children: the largest single child, in KiB on Linux.
            "children_peak_rss_mb": children.ru_maxrss / 1024,
        }
    except NotImplementedError as error:
        return {"skipped": str(error)}
    except Exception as error:  # reported to the parent, which raises it there
        return {"error": f"{type(error).__name__}: {error}"}


def peak_rss_kib() -> int:
    """This process's peak RSS: VmHWM, as ru_maxrss also counts the parent's peak before exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@contextmanager
def airflow_settings(conn_id: str, conninfo: str) -> Iterator[None]:
    """``conninfo`` as Airflow connection ``conn_id``, and what a migrate task's alerts check needs.

    In the environment, so that task bodies find their database as in a task, and ``spawn``ed
    workers inherit it.
    """
    settings = {
        f"AIRFLOW_CONN_{conn_id.upper()}": postgres_connection_json(conninfo),
        "AIRFLOW_VAR_ALERT_RECIPIENTS": "bench@localhost",
        "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(
            {"conn_type": "smtp", "host": "127.0.0.1", "port": 25, "extra": {"from_email": "bench@localhost"}}
        ),
    }
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def warm_workers(
    processes: int, import_the_pipeline: Callable[[], None]
) -> Iterator[tuple[multiprocessing.pool.Pool, float]]:
    """``processes`` fresh processes that have run ``import_the_pipeline``, and the clock.

    An Airflow worker has Airflow imported before it runs a task, and starting a task is
    Airflow's overhead (``bench.airflow_overhead``), not the pipeline's: the clock starts once
    this process and every worker have imported what a task imports. ``spawn``ed, so that a
    worker starts without the lane's memory; the caller's children, so their CPU and peak RSS
    are its children's figures too. ``import_the_pipeline`` must be a module-level function.
    """
    import_the_pipeline()
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(processes + 1)
    pool = context.Pool(processes, initializer=_worker_ready, initargs=(ready, import_the_pipeline))
    try:
        ready.wait(timeout=WARM_UP_TIMEOUT_S)
        yield pool, time.perf_counter()
    except BaseException:
        pool.terminate()
        raise
    else:
        pool.close()
    finally:
        pool.join()


def _worker_ready(ready: threading.Barrier, import_the_pipeline: Callable[[], None]) -> None:
    import_the_pipeline()
    ready.wait()


def this_process() -> dict[str, Any]:
    """A pool worker's id and peak RSS, to tell apart the processes that did a lane's work."""
    return {"pid": os.getpid(), "peak_rss_mb": round(peak_rss_kib() / 1024, 1)}


def processes_peak_rss_mb(reports: list[dict[str, Any]]) -> list[float]:
    """The peak RSS each worker reached, from its reports (several per worker), ascending."""
    peaks: dict[int, float] = {}
    for report in reports:
        peaks[report["pid"]] = max(peaks.get(report["pid"], 0.0), report["peak_rss_mb"])
    return sorted(peaks.values())


# A stage of ``stages_together``: ``target(*args)`` prepares (imports, builds) before the start line
# and returns the work, which returns the profiles it handled and the events it timed.
StageWork = Callable[[], tuple[int, list[Any]]]
Stage = tuple[Callable[..., StageWork], tuple[Any, ...]]


def stages_together(
    stages: dict[str, Stage],
    *,
    one_at_a_time: bool = False,
    process_name: str = "{}",
    timeout_s: float = WARM_UP_TIMEOUT_S,
) -> tuple[float, dict[str, dict[str, Any]]]:
    """Each stage in a ``spawn``ed process of its own, all started at one line; when, and what each did.

    The clock starts once every stage has prepared (imported what a task imports, as an Airflow
    worker has before it runs one), so that start-up is not counted as the stage's time. With
    ``one_at_a_time``, the stages start in order, each once the one before has ended. Returns
    the first start (epoch seconds) and ``{name: {"figures": {profiles, started_at, ended_at,
    cpu_s, peak_rss_mb}, "events": [...]}}``; a stage that failed or died raises here.
    """
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(len(stages) + 1)
    receivers, starts, processes = {}, {}, []
    try:
        for name, (target, args) in stages.items():
            receiver, sender = context.Pipe(duplex=False)
            starts[name] = context.Event()
            process = context.Process(
                target=_run_stage,
                args=(target, args, ready, starts[name], sender),
                name=process_name.format(name),
            )
            process.start()
            sender.close()
            receivers[name] = receiver
            processes.append(process)
        ready.wait(timeout=timeout_s)
        started_at = time.time()
        reports = {}
        if not one_at_a_time:
            for start in starts.values():
                start.set()
        for name, receiver in receivers.items():
            starts[name].set()
            reports[name] = _stage_report(name, receiver)
    except BaseException:
        for process in processes:
            process.kill()
        raise
    finally:
        for process in processes:
            process.join()
    return started_at, reports


def _stage_report(name: str, receiver: Connection) -> dict[str, Any]:
    try:
        report = receiver.recv()
    except EOFError:
        raise RuntimeError(f"stage {name!r}: its process died before reporting") from None
    if "error" in report:
        raise RuntimeError(f"stage {name!r} failed: {report['error']}")
    return report


def _run_stage(
    target: Callable[..., StageWork],
    args: tuple[Any, ...],
    ready: threading.Barrier,
    start: threading.Event,
    sender: Connection,
) -> None:
    try:
        work = target(*args)
        ready.wait(timeout=WARM_UP_TIMEOUT_S)
        start.wait()
        before = resource.getrusage(resource.RUSAGE_SELF)
        started_at = time.time()
        handled, events = work()
        ended_at = time.time()
        after = resource.getrusage(resource.RUSAGE_SELF)
        figures = {
            "profiles": handled,
            "started_at": started_at,
            "ended_at": ended_at,
            "cpu_s": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
            "peak_rss_mb": peak_rss_kib() / 1024,
        }
        sender.send({"figures": figures, "events": events})
    except Exception as error:  # reported to the parent, which raises it there
        sender.send({"error": f"{type(error).__name__}: {error}"})
    finally:
        sender.close()
