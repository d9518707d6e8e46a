"""The services a benchmark run talks to: a throwaway PostgreSQL and the API simulator.

Both run in their own processes, so neither shares CPU time accounting with a measured stage.
PostgreSQL keeps its default durability (fsync, synchronous commit): the figures are those of a
real server, not of the tests' fast mode.
"""

from __future__ import annotations

import logging
import multiprocessing
import resource
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from devservices.postgres import HOST, LocalPostgres, free_port
from devservices.simulator.process import SimulatorProcess

log = logging.getLogger("bench")

SIMULATOR_CLIENT = "bench"


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


def peak_rss_kib() -> int:
    """This process's peak RSS: VmHWM, as ru_maxrss also counts the parent's peak before exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
