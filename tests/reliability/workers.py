"""Worker processes for the fault tests: a try in a process of its own, for a test to SIGKILL.

Started as ``python -m ...``, each such process would first spend 5-10 s importing Airflow and
the pipeline before its try began. Like the LocalExecutor's and Celery's prefork workers, these
fork from one process that imported all of that once: multiprocessing's fork server, with the
harnesses as its preload. It is started by ``warm_up`` (the reliability modules' first fixture),
so that its imports overlap their set-up. Forking the single-threaded fork server is safe, where
forking pytest's process, with the threads of its SMTP and HTTP servers, would not be.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import signal
from collections.abc import Callable
from typing import Any

# What a try imports: the pipelines' harnesses, so Airflow and the task bodies.
PRELOAD = [
    "tests.reliability.harness",
    "tests.reliability.csv_import_harness",
    "tests.reliability.profile_relay_harness",
]

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(PRELOAD)


def warm_up() -> None:
    """Start the fork server, if it is not running, without waiting for its imports."""
    multiprocessing.forkserver.ensure_running()


class Worker:
    """``target(*args)`` in a process forked for it: ``send_signal`` and ``wait`` as on a ``Popen``.

    The try sees the environment of the moment it starts (the test's connections), not the fork
    server's. Its exit code is 0 when ``target`` returned, 1 when it raised, ``-signum`` when a
    signal killed it.
    """

    def __init__(self, target: Callable[..., Any], *args: Any) -> None:
        self._process = _context.Process(target=_in_environment, args=(dict(os.environ), target, args))
        self._process.start()

    @property
    def pid(self) -> int:
        assert self._process.pid is not None
        return self._process.pid

    def send_signal(self, signum: signal.Signals) -> None:
        os.kill(self.pid, signum)

    def poll(self) -> int | None:
        """The exit code, or None while the try runs."""
        return self._process.exitcode

    def wait(self, timeout_s: float) -> int:
        self._process.join(timeout_s)
        if self._process.exitcode is None:
            raise TimeoutError(f"worker {self.pid} still running after {timeout_s} s")
        return self._process.exitcode


def _in_environment(environment: dict[str, str], target: Callable[..., Any], args: tuple[Any, ...]) -> None:
    os.environ.clear()
    os.environ.update(environment)
    target(*args)
