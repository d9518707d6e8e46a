"""The services a benchmark run talks to: a throwaway PostgreSQL and the API simulator.

Both run in their own processes, so neither shares CPU time accounting with a measured stage.
PostgreSQL keeps its default durability (fsync, synchronous commit): the figures are those of a
real server, not of the tests' fast mode.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
