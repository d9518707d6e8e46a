"""Run a DAG once on this machine with ``airflow dags test``, as ``make run`` does.

The local runners (:mod:`devservices.local_runs`) share this: Airflow's environment for the
project, its metadata database brought up to date, the run itself with its output kept in a log
file under the local state folder, and the local services stopped afterwards.

Plain ``airflow dags test`` runs the tasks itself, one after another. A DAG whose tasks must run
at the same time (``user_profiles_relay``: generate, process and send together) is run with
``--use-executor`` and the LocalExecutor, each task in a process of its own. Those processes
reach Airflow only through its Execution API, which ``dags test`` does not serve when it hands
tasks to an executor: without one at ``[core] execution_api_server_url`` every task fails with
"Connection refused" and the command then hangs shutting the executor down. So such a run gets
an ``airflow api-server --apps execution`` of its own for its duration (:class:`ExecutionApi`).

``airflow db migrate`` costs about ten seconds of Airflow start-up even when there is nothing to
migrate, on every ``make run``. When the metadata database is the Airflow home's own SQLite file
(``make run``'s), a successful migrate records the revision it left the database at, with the
Airflow version; the next run skips the command while both still match. Any other database, a
removed or replaced file, or another Airflow version is migrated as before.
"""

from __future__ import annotations

import configparser
import contextlib
import json
import logging
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any, Self

import requests

from devservices.environment import PROJECT_ROOT, airflow_environment, load_settings
from devservices.local_services import log_path
from devservices.postgres import free_port

# Written into the Airflow home after a successful migrate: {"airflow": version, "revision": ...}.
MIGRATED_STAMP = "metadata-db-migrated.json"
# Task processes the LocalExecutor runs at once: enough for three concurrent stages and a watcher,
# few enough for a 2-core machine (each one is a Python process with Airflow imported).
EXECUTOR_PARALLELISM = 4
EXECUTION_API_HOST = "127.0.0.1"
EXECUTION_API_START_TIMEOUT_S = 120
EXECUTION_API_STOP_GRACE_S = 30
# How long `dags test --use-executor` may take to exit after its run has finished (it takes a
# few seconds: each worker's supervisor winds down) before it is taken for hung.
EXECUTOR_SHUTDOWN_GRACE_S = 30
TERMINAL_RUN_STATES = frozenset({"success", "failed"})

log = logging.getLogger("make run")


@dataclass(frozen=True)
class DagTest:
    """The outcome of one ``airflow dags test``: its exit code, where its output went, how long it
    took (Airflow's start-up included)."""

    returncode: int
    log: Path
    seconds: float

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0


class LocalAirflow:
    """The Airflow CLI with the project's DAGs, plugins and local settings (``.env``)."""

    def __init__(self) -> None:
        load_settings()
        self.home = Path(os.environ["AIRFLOW_HOME"])
        self.env = airflow_environment(self.home)

    def migrate(self) -> bool:
        """Bring the metadata database to this Airflow's schema; False when it already was."""
        stamp = self.home / MIGRATED_STAMP
        database = sqlite_metadata_db(self.home, self.env)
        if database is not None and metadata_db_is_current(database, stamp):
            log.info(
                "metadata database %s already migrated by Airflow %s", database, version("apache-airflow")
            )
            return False
        self.run(["db", "migrate"], log_name="airflow-db-migrate")
        revision = None if database is None else alembic_revision(database)
        if revision is not None:
            stamp.write_text(json.dumps({"airflow": version("apache-airflow"), "revision": revision}) + "\n")
        return True

    def dags_test(
        self,
        dag_id: str,
        logical_date: str,
        conf: dict[str, Any],
        *,
        log_name: str,
        executor: ExecutionApi | None = None,
    ) -> DagTest:
        """Run ``dag_id`` once for ``logical_date`` with ``conf``; a failed run is returned, not raised.

        With ``executor`` (see :meth:`execution_api`), the LocalExecutor runs the tasks, each in a
        process of its own, so that tasks free to run at the same time do.
        """
        started = time.monotonic()
        args = ["dags", "test", dag_id, logical_date, "--conf", json.dumps(conf)]
        if executor is None:
            returncode = self.run(args, log_name=log_name, check=False).returncode
        else:
            env = executor.ready()
            returncode = run_until_its_run_ends(
                [_airflow_executable(), *args, "--use-executor"],
                env=env,
                output=log_path(log_name),
                database=sqlite_metadata_db(self.home, env),
                dag_id=dag_id,
            )
        return DagTest(returncode, log_path(log_name), time.monotonic() - started)

    def dags_test_now(
        self, dag_id: str, conf: dict[str, Any], *, executor: ExecutionApi | None = None
    ) -> DagTest:
        """``dags_test`` of an unscheduled DAG, as a person triggers it: now as its logical date."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        return self.dags_test(dag_id, now, conf, log_name=f"dags-test-{dag_id}", executor=executor)

    def execution_api(self) -> ExecutionApi:
        """The Execution API a ``dags_test`` with the LocalExecutor needs (after :meth:`migrate`).

        Enter it early: its start-up (about 15 s) then overlaps whatever comes before the run.
        """
        return ExecutionApi(self.env)

    def task_spans(self, dag_id: str, run_id: str) -> dict[str, TaskSpan]:
        """The run's task instances, when the metadata database is the Airflow home's SQLite file."""
        database = sqlite_metadata_db(self.home, self.env)
        return {} if database is None else task_spans(database, dag_id, run_id)

    def run(
        self, args: list[str], *, log_name: str, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        path = log_path(log_name)
        with path.open("w") as out:
            completed = subprocess.run(
                [_airflow_executable(), *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=PROJECT_ROOT,
                check=False,
            )
        if check and completed.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args)} failed ({completed.returncode}); log {path}:\n{_tail(path)}"
            )
        return completed


@dataclass(frozen=True)
class TaskSpan:
    """One task instance of a run as Airflow recorded it: when it ran (UTC) and in which process."""

    task_id: str
    state: str | None
    start: datetime | None
    end: datetime | None
    pid: int | None


def task_spans(database: Path, dag_id: str, run_id: str) -> dict[str, TaskSpan]:
    """The task instances of a run, read from Airflow's SQLite metadata ``database``; {} without it.

    Read directly rather than through ``airflow tasks states-for-dag-run``, which would cost
    Airflow's start-up to learn a few timestamps.
    """
    try:
        with contextlib.closing(sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)) as conn:
            rows = conn.execute(
                "SELECT task_id, state, start_date, end_date, pid FROM task_instance"
                " WHERE dag_id = ? AND run_id = ? AND map_index = -1",
                (dag_id, run_id),
            ).fetchall()
    except sqlite3.Error:
        return {}
    return {
        task_id: TaskSpan(task_id, state, _utc(start), _utc(end), pid)
        for task_id, state, start, end, pid in rows
    }


def _utc(stored: str | None) -> datetime | None:
    # SQLite holds Airflow's UTC timestamps as naive ISO text.
    return None if stored is None else datetime.fromisoformat(stored).replace(tzinfo=UTC)


class ExecutionApi:
    """``airflow api-server --apps execution`` on a free loopback port, while the ``with`` lasts.

    Only the Execution API (what task processes call), not the UI or the REST API. It and the
    ``dags test`` that uses it share a JWT secret made for the occasion: each process would
    otherwise generate its own, and the server would refuse every task's token.
    """

    def __init__(self, env: Mapping[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://{EXECUTION_API_HOST}:{self.port}/execution/"
        self._env = {
            **env,
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(EXECUTOR_PARALLELISM),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": self.url,
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
        }
        self._log = log_path("airflow-execution-api")
        self._process: subprocess.Popen[bytes] | None = None
        self._healthy = False

    def __enter__(self) -> Self:
        """Start the server; :meth:`ready` waits for it."""
        command = [_airflow_executable(), "api-server", "--apps", "execution"]
        command += ["--host", EXECUTION_API_HOST, "--port", str(self.port), "--workers", "1"]
        with self._log.open("w") as out:
            # A session of its own: stopping it must also stop the uvicorn worker it forks.
            self._process = subprocess.Popen(
                command,
                env=self._env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=PROJECT_ROOT,
                start_new_session=True,
            )
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop()

    def ready(self) -> dict[str, str]:
        """Wait until the server answers; the environment of a ``dags test --use-executor`` it serves."""
        if not self._healthy:
            self._wait_until_healthy()
            self._healthy = True
            log.info("Airflow's Execution API on %s", self.url)
        return dict(self._env)

    def _wait_until_healthy(self) -> None:
        if self._process is None:
            raise RuntimeError("the Execution API is not started: enter it first")
        deadline = time.monotonic() + EXECUTION_API_START_TIMEOUT_S
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"airflow api-server exited with {self._process.returncode}; log {self._log}:\n"
                    + _tail(self._log)
                )
            try:
                if requests.get(f"{self.url}health", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"Airflow's Execution API did not answer on {self.url} within "
                    f"{EXECUTION_API_START_TIMEOUT_S} s; log {self._log}:\n" + _tail(self._log)
                )
            time.sleep(0.5)

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            _stop_group(process, grace_s=EXECUTION_API_STOP_GRACE_S)


def run_until_its_run_ends(
    command: list[str],
    *,
    env: Mapping[str, str],
    output: Path,
    database: Path | None,
    dag_id: str,
    grace_s: float = EXECUTOR_SHUTDOWN_GRACE_S,
) -> int:
    """Run ``command`` (a ``dags test --use-executor``, its output into ``output``); its exit
    status, or its run's outcome.

    Airflow 3.3.2's ``dags test`` can hang after its run has finished, shutting the LocalExecutor
    down: it sends one stop message per worker it sees alive, joins them all, and now and then
    one worker never gets its message and waits for work forever (seen in two of about ten runs
    here, after a failed and after a successful run). The run's outcome is in the metadata
    ``database`` by then: once a new run of ``dag_id`` there has finished and the command has not
    exited ``grace_s`` later, the command and its workers are stopped, and the outcome is the
    run's state (0 for success, 1 otherwise). Without a SQLite metadata database to read
    (``database`` None), the command is waited for as it is.
    """
    previous = _latest_dag_run(database, dag_id) if database is not None else None
    with output.open("w") as out:
        # A session of its own: its LocalExecutor workers are stopped with it.
        process = subprocess.Popen(
            command,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
            start_new_session=True,
        )
    try:
        finished_at: float | None = None
        while True:
            try:
                return process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
            run = None if database is None else _latest_dag_run(database, dag_id)
            if run is None or (previous is not None and run[0] == previous[0]):
                continue
            run_id, state = run
            if state not in TERMINAL_RUN_STATES:
                continue
            finished_at = finished_at or time.monotonic()
            if time.monotonic() - finished_at > grace_s:
                log.warning(
                    "airflow dags test did not exit %.0f s after its run %s ended (%s): stopping it",
                    grace_s,
                    run_id,
                    state,
                )
                return 0 if state == "success" else 1
    finally:
        _stop_group(process, grace_s=EXECUTION_API_STOP_GRACE_S)


def _latest_dag_run(database: Path, dag_id: str) -> tuple[str, str | None] | None:
    """The newest run of ``dag_id`` in the SQLite metadata ``database``: (run_id, state), or None."""
    try:
        with contextlib.closing(sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)) as conn:
            return conn.execute(
                "SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
            ).fetchone()
    except sqlite3.Error:
        return None


def _stop_group(process: subprocess.Popen[bytes], *, grace_s: float) -> None:
    """SIGTERM the process group of ``process`` if it still runs; SIGKILL what is left after ``grace_s``."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            log.warning(
                "airflow %s did not stop within %d s: killing it", " ".join(process.args[1:3]), grace_s
            )
    # What it started (workers, forked servers) may outlive it.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _airflow_executable() -> str:
    return str(Path(sys.executable).parent / "airflow")


def _tail(path: Path, lines: int = 30) -> str:
    return "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:])


def sqlite_metadata_db(home: Path, env: Mapping[str, str]) -> Path | None:
    """The SQLite file that is Airflow's metadata database in ``env``, or None for any other kind.

    Read from the environment and ``airflow.cfg`` without importing Airflow, which would cost the
    start-up that skipping a migrate saves. A setting only Airflow can resolve (``_CMD``,
    ``_SECRET``, an async URL, the deprecated ``[core]`` key) counts as another kind.
    """
    url = _metadata_url(home, env)
    if url is None or not url.startswith("sqlite:///") or "?" in url:
        return None
    path = Path(url.removeprefix("sqlite:///"))
    return path if path.is_absolute() else None


def _metadata_url(home: Path, env: Mapping[str, str]) -> str | None:
    keys = {f"sql_alchemy_conn{suffix}" for suffix in ("", "_cmd", "_secret", "_async")}
    in_env = {
        name
        for name in env
        if name in {f"AIRFLOW__{section}__{key}".upper() for section in ("core", "database") for key in keys}
    }
    if in_env:
        return (
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
            if in_env == {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"}
            else None
        )
    config = configparser.ConfigParser(interpolation=None)
    config.read(home / "airflow.cfg")
    in_config = {
        (section, key) for section in ("core", "database") for key in keys if config.has_option(section, key)
    }
    if not in_config:
        return f"sqlite:///{home / 'airflow.db'}"
    return (
        config.get("database", "sql_alchemy_conn")
        if in_config == {("database", "sql_alchemy_conn")}
        else None
    )


def alembic_revision(database: Path) -> str | None:
    """The schema revision Airflow's migrations left ``database`` at; None without one."""
    try:
        with contextlib.closing(sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)) as conn:
            revisions = [row[0] for row in conn.execute("SELECT version_num FROM alembic_version")]
    except sqlite3.Error:
        return None
    return ",".join(sorted(revisions)) or None


def metadata_db_is_current(database: Path, stamp: Path) -> bool:
    """True while ``database`` is at the revision this Airflow version's last migrate left it at."""
    try:
        recorded = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    return recorded == {"airflow": version("apache-airflow"), "revision": alembic_revision(database)}
