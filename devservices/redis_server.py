"""A throwaway Redis, run with Debian's ``redis-server``: the Celery broker of the local tests.

The server is a child process in the foreground (no daemon, no system service), listens on
127.0.0.1 only and keeps nothing on disk: a broker's queue is worth nothing once the test that
filled it has ended. Everything it says goes to ``<state_dir>/redis.log``.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

import redis

log = logging.getLogger("devservices.redis")

HOST = "127.0.0.1"
START_TIMEOUT_S = 30
STOP_GRACE_S = 10
LOG_TAIL_LINES = 20


class LocalRedisError(RuntimeError):
    """redis-server is missing, did not start, or did not answer in time."""


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        raise LocalRedisError(
            "redis-server is not installed (Debian package redis-server): run scripts/install_test_tools.sh"
        )
    return found


@dataclass
class LocalRedis:
    """``redis-server`` on 127.0.0.1:``port``, its working directory and log in ``state_dir``."""

    port: int
    state_dir: Path
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "redis.log"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        command = [
            redis_server_binary(),
            "--bind",
            HOST,
            "--port",
            str(self.port),
            # Refuses clients from other addresses even if the bind above is ever widened.
            "--protected-mode",
            "yes",
            "--save",
            "",
            "--appendonly",
            "no",
            # Where a stray BGSAVE or a crash report would land: never the caller's directory.
            "--dir",
            str(self.state_dir),
            "--daemonize",
            "no",
            # Empty: log to stdout, which is our log file.
            "--logfile",
            "",
        ]
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as out:
            offset = out.tell()
            self._process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            self._wait_until_answering(offset)
        except BaseException:
            self.stop()
            raise
        log.info("started Redis on %s:%d (log in %s)", HOST, self.port, self.log_file)

    def stop(self) -> None:
        """SIGTERM the server; SIGKILL it if it has not exited after the grace period."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            log.warning("redis-server did not stop within %d s: killing it", STOP_GRACE_S)
            self._process.kill()
            self._process.wait()
        self._process = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _wait_until_answering(self, log_offset: int) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        client = redis.Redis(host=HOST, port=self.port, socket_timeout=1, socket_connect_timeout=1)
        with contextlib.closing(client):
            while True:
                if self._process.poll() is not None:
                    raise LocalRedisError(
                        f"redis-server exited with {self._process.returncode} on port {self.port}:\n"
                        + self._log_tail(log_offset)
                    )
                with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
                    # Another server already on the port would answer too, while ours fails to bind.
                    if client.ping() and client.info("server")["process_id"] == self._process.pid:
                        return
                if time.monotonic() > deadline:
                    raise LocalRedisError(
                        f"redis-server on port {self.port} did not answer PING in {START_TIMEOUT_S} s:\n"
                        + self._log_tail(log_offset)
                    )
                time.sleep(0.1)

    def _log_tail(self, offset: int) -> str:
        with self.log_file.open("rb") as handle:
            handle.seek(offset)
            lines = handle.read().decode(errors="replace").splitlines()
        return "\n".join(lines[-LOG_TAIL_LINES:])
