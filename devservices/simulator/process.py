"""The simulator as a child process (``python -m devservices.simulator``), for commands that
must not share their process with it: ``make run`` and the benchmark."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from devservices.environment import PROJECT_ROOT


class SimulatorProcess:
    """Serve the statistics API on ``host:port`` for ``client``/``client_key`` until exit."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        client: str,
        client_key: str,
        records_per_day: int,
        log_file: Path,
        log_level: str = "INFO",
    ) -> None:
        self.base_url = f"http://{host}:{port}"
        self.client = client
        self.client_key = client_key
        self.records_per_day = records_per_day
        self._command = [
            sys.executable,
            "-m",
            "devservices.simulator",
            "--host",
            host,
            "--port",
            str(port),
            "--client",
            client,
            "--records-per-day",
            str(records_per_day),
            "--log-level",
            log_level,
        ]
        self._log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> SimulatorProcess:
        # The key goes through the environment, not the command line that `ps` shows.
        env = {**os.environ, "LEARNING_PLATFORM_SIMULATOR_CLIENT_KEY": self.client_key}
        with self._log_file.open("ab") as out:
            self._process = subprocess.Popen(
                self._command, stdout=out, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT, env=env
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
