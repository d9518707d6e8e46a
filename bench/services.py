"""The services a benchmark run talks to: a throwaway PostgreSQL and the API simulator.

Both run in their own processes, so neither shares CPU time accounting with a measured stage.
PostgreSQL keeps its default durability (fsync, synchronous commit): the figures are those of a
real server, not of the tests' fast mode.
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from devservices.environment import PROJECT_ROOT
from devservices.postgres import HOST, LocalPostgres, free_port

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


class SimulatorProcess:
    """``python -m devservices.simulator`` as a child process on a free port."""

    def __init__(self, records_per_day: int, log_file: Path) -> None:
        self.records_per_day = records_per_day
        self.client = SIMULATOR_CLIENT
        self.client_key = secrets.token_urlsafe(16)
        self.base_url = f"http://{HOST}:{free_port()}"
        self._log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> SimulatorProcess:
        port = self.base_url.rsplit(":", 1)[1]
        command = [sys.executable, "-m", "devservices.simulator", "--host", HOST, "--port", port]
        command += ["--client", self.client, "--records-per-day", str(self.records_per_day)]
        command += ["--log-level", "WARNING"]
        # The key goes through the environment, not the command line that `ps` shows.
        env = {**os.environ, "LEARNING_PLATFORM_SIMULATOR_CLIENT_KEY": self.client_key}
        with self._log_file.open("ab") as out:
            self._process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT, env=env
            )
        try:
            self._wait_until_healthy()
        except BaseException:
            self.__exit__()
            raise
        return self

    def set_records_per_day(self, records_per_day: int) -> None:
        response = requests.put(
            f"{self.base_url}/_simulator/config", json={"records_per_day": records_per_day}, timeout=10
        )
        response.raise_for_status()
        self.records_per_day = records_per_day

    def _wait_until_healthy(self, timeout_s: float = 30.0) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the simulator exited at start-up; see {self._log_file}")
            try:
                if requests.get(f"{self.base_url}/_simulator/health", timeout=1).ok:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the simulator did not answer within {timeout_s:.0f} s; see {self._log_file}")

    def __exit__(self, *exc_info: object) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None
