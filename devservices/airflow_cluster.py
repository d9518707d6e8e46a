"""A real Airflow deployment on this machine: the components production runs, one process each.

``make airflow`` and the tests that need a running Airflow (the browser test, the Celery test)
use it instead of ``airflow standalone``: the same api-server, scheduler, dag-processor and
triggerer a deployment runs, with PostgreSQL as the metadata database, and either the
LocalExecutor or the CeleryExecutor with Redis and any number of ``airflow celery worker``
processes. Every component runs in its own process group and writes ``<component>.log`` into
the Airflow home; stopping sends SIGTERM to each group and SIGKILL to what is left after a grace
period, so no api-server is left holding its port.

The UI asks for a login (SimpleAuthManager): user ``admin``, with the password given here, and
any other users given (name → role and password: a ``viewer`` that may only read, ``user``s
that may trigger). Passwords are written to the auth manager's password file before the
api-server starts, so nothing is generated or printed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import requests
from sqlalchemy.engine import make_url

from devservices.environment import PROJECT_ROOT, airflow_environment
from devservices.postgres import free_port
from include.maintenance.metadata import METADATA_DB_CONN_ID

log = logging.getLogger("devservices.airflow")

ADMIN_USER = "admin"
HOST = "127.0.0.1"
STOP_GRACE_S = 30
TERMINAL_RUN_STATES = frozenset({"success", "failed"})
# Where a Celery worker finds its address (see CeleryWorkers), for worker_address().
WORKER_ADDRESS_VARIABLE = "LOCAL_AIRFLOW_WORKER_ADDRESS"


class AirflowClusterError(RuntimeError):
    """A component did not start, or Airflow did not become ready in time."""


@dataclass(frozen=True)
class CeleryWorkers:
    """``count`` Celery workers fed by the Redis at ``broker_url``, each ``concurrency`` slots.

    The machine's name would not tell workers on one machine apart in a task instance's hostname
    (which the UI shows, and fetches a running task's log from). So each worker gets a loopback
    address of its own (all of 127.0.0.0/8 is this machine): the host part of its Celery name,
    and the hostname its task instances report.
    """

    broker_url: str
    count: int = 2
    concurrency: int = 2
    first_log_server_port: int = 8793

    def address(self, index: int) -> str:
        return f"127.0.0.{index + 1}"

    def hostname(self, index: int) -> str:
        return f"worker{index + 1}@{self.address(index)}"


@dataclass
class LocalAirflow:
    """Airflow in ``home`` with metadata in ``metadata_url``, the UI on 127.0.0.1:``api_port``.

    ``base_env`` is the environment of every component (connections, variables, pipeline
    settings); ``celery`` switches from the LocalExecutor to Celery workers. ``parallelism``
    stays low: each LocalExecutor slot is a pre-forked process, and the machine has 2 cores.
    ``dags_paused_at_creation`` keeps new DAGs paused, as production does: nothing runs until
    someone unpauses a DAG (a test that must see the scheduler's first run do so on cue).
    ``users`` adds logins beside ``admin``: name → (SimpleAuthManager role, password), the role
    one of ``viewer``, ``user``, ``op``, ``admin``.
    """

    home: Path
    metadata_url: str
    admin_password: str = field(repr=False)
    api_port: int = 8080
    celery: CeleryWorkers | None = None
    parallelism: int = 4
    worker_log_server_port: int = 8793
    triggerer_log_server_port: int = 8794
    dags_paused_at_creation: bool = False
    base_env: Mapping[str, str] | None = field(default=None, repr=False)
    users: Mapping[str, tuple[str, str]] = field(default_factory=dict, repr=False)
    _processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, init=False, repr=False)
    # What each component was started with, so that one can be restarted alone.
    _commands: dict[str, tuple[list[str], Mapping[str, str]]] = field(
        default_factory=dict, init=False, repr=False
    )

    @classmethod
    def on_free_ports(cls, **settings: Any) -> Self:
        """A deployment that can run beside any other here: its API and log servers on free ports."""
        return cls(
            api_port=free_port(),
            worker_log_server_port=free_port(),
            triggerer_log_server_port=free_port(),
            **settings,
        )

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.api_port}"

    def environment(self) -> dict[str, str]:
        """The environment of every component and of any ``airflow`` CLI call against it."""
        env = airflow_environment(
            self.home, base=dict(os.environ if self.base_env is None else self.base_env)
        )
        env.update(
            {
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.metadata_url,
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor" if self.celery else "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
                # Local deployments run what they are given; production keeps the default (paused).
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": str(self.dags_paused_at_creation),
                # A DAG file added while Airflow runs shows up within seconds, not 5 minutes.
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
                    f"{name}:{role}" for name, (role, _) in self._logins().items()
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self._passwords_file),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__API__HOST": HOST,
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__BASE_URL": self.url,
                # Every process must sign and check task tokens with the same key.
                "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret(),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.triggerer_log_server_port),
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(
                    self.celery.first_log_server_port if self.celery else self.worker_log_server_port
                ),
            }
        )
        # The maintenance DAG's `airflow db clean` reaches the metadata database through this
        # connection: Airflow 3 tasks get no sql_alchemy_conn of their own.
        env[f"AIRFLOW_CONN_{METADATA_DB_CONN_ID.upper()}"] = _connection_json(self.metadata_url)
        if self.celery:
            env["AIRFLOW__CELERY__BROKER_URL"] = self.celery.broker_url
            env["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + self.metadata_url
            env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = str(self.celery.concurrency)
        return env

    # --- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Migrate the metadata database, then start every component."""
        self.home.mkdir(parents=True, exist_ok=True)
        passwords = {name: password for name, (_, password) in self._logins().items()}
        self._passwords_file.write_text(json.dumps(passwords) + "\n")
        self._passwords_file.chmod(0o600)
        self.run_cli(["db", "migrate"], log_name="db-migrate")
        components: dict[str, list[str]] = {
            "api-server": ["api-server", "--host", HOST, "--port", str(self.api_port), "--workers", "1"],
            "scheduler": ["scheduler"],
            "dag-processor": ["dag-processor"],
            "triggerer": ["triggerer"],
        }
        extra_env: dict[str, dict[str, str]] = {}
        if self.celery:
            for index in range(self.celery.count):
                name = f"celery-worker-{index + 1}"
                components[name] = ["celery", "worker", "--celery-hostname", self.celery.hostname(index)]
                # Each worker serves its task logs to the UI on a port of its own.
                port = self.celery.first_log_server_port + index
                extra_env[name] = {
                    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(port),
                    "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.{worker_address.__name__}",
                    WORKER_ADDRESS_VARIABLE: self.celery.address(index),
                }
        for name, args in components.items():
            self._spawn(name, args, extra_env.get(name, {}))
        log.info("Airflow components started: %s (logs in %s)", ", ".join(components), self.home)

    def stop(self) -> None:
        """SIGTERM every component's process group; SIGKILL what is left after the grace period."""
        for process in self._processes.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for name, process in self._processes.items():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %d s: killing it", name, STOP_GRACE_S)
            # Children of a component (task runners, gunicorn/uvicorn workers) may outlive it.
            _signal_group(process, signal.SIGKILL)
            process.wait()
        self._processes.clear()

    def restart(self, component: str) -> None:
        """Stop one component as :meth:`stop` does (SIGTERM to its group, SIGKILL after the grace
        period) and start it again with the same command and environment.

        A restarted api-server keeps accepting the tokens it issued before: the JWT secret is the
        home's (see ``_jwt_secret``), not the process's.
        """
        process = self._processes[component]
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %d s: killing it", component, STOP_GRACE_S)
        _signal_group(process, signal.SIGKILL)
        process.wait()
        args, extra_env = self._commands[component]
        self._spawn(component, args, extra_env)
        log.info("%s restarted", component)

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def wait_until_ready(self, dag_ids: Iterable[str], timeout_s: float = 180) -> AirflowApi:
        """Wait until the API answers and every DAG in ``dag_ids`` is parsed; return a client."""
        deadline = time.monotonic() + timeout_s
        api = AirflowApi(self.url, ADMIN_USER, self.admin_password)
        pending = set(dag_ids)
        while True:
            self.check_components_alive()
            try:
                healthy = api.healthy()
                if healthy:
                    pending = {dag_id for dag_id in pending if not api.dag_is_parsed(dag_id)}
                    if not pending:
                        return api
            except requests.RequestException:
                healthy = False
            if time.monotonic() > deadline:
                waiting_for = "the API" if not healthy else f"DAGs {sorted(pending)} to be parsed"
                raise AirflowClusterError(
                    f"Airflow at {self.url} not ready in {timeout_s:.0f} s: {waiting_for}"
                )
            time.sleep(1)

    def run_cli(self, args: list[str], *, log_name: str) -> subprocess.CompletedProcess[bytes]:
        """Run ``airflow ARGS`` against this deployment; raise with the log's tail if it fails."""
        path = self.log_file(log_name)
        with path.open("ab") as out:
            completed = subprocess.run(
                [_airflow_executable(), *args],
                env=self.environment(),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=PROJECT_ROOT,
                check=False,
            )
        if completed.returncode != 0:
            raise AirflowClusterError(
                f"airflow {' '.join(args)} failed ({completed.returncode}):\n{_tail(path)}"
            )
        return completed

    def log_file(self, component: str) -> Path:
        return self.home / f"{component}.log"

    def component_pids(self) -> dict[str, int]:
        return {name: process.pid for name, process in self._processes.items()}

    # --- internals --------------------------------------------------------------------------

    def _logins(self) -> dict[str, tuple[str, str]]:
        if ADMIN_USER in self.users:
            raise ValueError(f"'{ADMIN_USER}' is always a user: give its password as admin_password")
        return {ADMIN_USER: ("admin", self.admin_password), **self.users}

    @property
    def _passwords_file(self) -> Path:
        return self.home / "simple_auth_manager_passwords.json"

    def _jwt_secret(self) -> str:
        """One secret per Airflow home, kept there so that restarts keep tokens valid."""
        path = self.home / "jwt_secret"
        if not path.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(64))
        return path.read_text().strip()

    def _spawn(self, name: str, args: list[str], extra_env: Mapping[str, str]) -> None:
        self._commands[name] = (args, extra_env)
        with self.log_file(name).open("ab") as out:
            self._processes[name] = subprocess.Popen(
                [_airflow_executable(), *args],
                env={**self.environment(), **extra_env},
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=PROJECT_ROOT,
                start_new_session=True,
            )

    def check_components_alive(self) -> None:
        for name, process in self._processes.items():
            if process.poll() is not None:
                raise AirflowClusterError(
                    f"{name} exited with {process.returncode}:\n{_tail(self.log_file(name))}"
                )


class AirflowApi:
    """The few calls of Airflow's REST API v2 that the local tooling and tests make."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url
        self._credentials = {"username": username, "password": password}
        self._session = requests.Session()

    def healthy(self) -> bool:
        response = self._session.get(f"{self.base_url}/api/v2/monitor/health", timeout=10)
        return response.ok

    def dag_is_parsed(self, dag_id: str) -> bool:
        return self._request("GET", f"/dags/{dag_id}", allow_missing=True) is not None

    def trigger(self, dag_id: str, *, conf: Mapping[str, Any], logical_date: str | None = None) -> str:
        """Trigger ``dag_id`` with ``conf``; the new run's id."""
        body = {"logical_date": logical_date, "conf": dict(conf)}
        return self._request("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def set_paused(self, dag_id: str, *, paused: bool) -> None:
        self._request("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    def put_variable(self, key: str, value: str) -> None:
        """Create or replace the Variable ``key`` in the metadata database."""
        body = {"key": key, "value": value}
        if self._request("PATCH", f"/variables/{key}", json=body, allow_missing=True) is None:
            self._request("POST", "/variables", json=body)

    def put_connection(self, conn_id: str, fields: Mapping[str, Any]) -> None:
        """Create or replace the connection ``conn_id``; ``fields`` as in an ``AIRFLOW_CONN_*`` JSON."""
        body = {"connection_id": conn_id, **fields}
        if isinstance(body.get("extra"), Mapping):
            body["extra"] = json.dumps(body["extra"])
        if self._request("PATCH", f"/connections/{conn_id}", json=body, allow_missing=True) is None:
            self._request("POST", "/connections", json=body)

    def clear_from(self, dag_id: str, run_id: str, task_id: str) -> None:
        """Clear ``task_id`` and everything downstream of it in the run, as the UI's Clear does."""
        body = {
            "dry_run": False,
            "dag_run_id": run_id,
            "task_ids": [task_id],
            "include_downstream": True,
            "only_failed": False,
            "reset_dag_runs": True,
        }
        self._request("POST", f"/dags/{dag_id}/clearTaskInstances", json=body)

    def mark_run(self, dag_id: str, run_id: str, state: str) -> None:
        """Mark the run ``success`` or ``failed``, as an operator does in the UI."""
        self._request("PATCH", f"/dags/{dag_id}/dagRuns/{run_id}", json={"state": state})

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self._request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self._request("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]

    def tasks(self, dag_id: str) -> list[dict[str, Any]]:
        """The DAG's tasks as parsed, each with its ``downstream_task_ids``."""
        return self._request("GET", f"/dags/{dag_id}/tasks")["tasks"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        return self._request("GET", path, params={"limit": 100})["task_instances"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout_s: float = 600) -> str:
        """Wait until the run is finished; its final state."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = self._request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
            if state in TERMINAL_RUN_STATES:
                return state
            time.sleep(2)
        raise AirflowClusterError(f"{dag_id} run {run_id} not finished in {timeout_s:.0f} s")

    def _request(self, method: str, path: str, *, allow_missing: bool = False, **kwargs: Any) -> Any:
        url = f"{self.base_url}/api/v2{path}"
        # One fresh token and one more try when the current token has expired.
        for refresh in (False, True):
            self._authenticate(refresh=refresh)
            response = self._session.request(method, url, timeout=30, **kwargs)
            if response.status_code != 401:
                break
        if allow_missing and response.status_code == 404:
            return None
        if not response.ok:
            raise AirflowClusterError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json()

    def _authenticate(self, *, refresh: bool) -> None:
        if refresh or "Authorization" not in self._session.headers:
            response = self._session.post(f"{self.base_url}/auth/token", json=self._credentials, timeout=30)
            response.raise_for_status()
            self._session.headers["Authorization"] = "Bearer " + response.json()["access_token"]


def worker_address() -> str:
    """The ``[core] hostname_callable`` of the Celery workers started here: their own address."""
    return os.environ[WORKER_ADDRESS_VARIABLE]


def _connection_json(sqlalchemy_url: str) -> str:
    """An Airflow connection (JSON form) for the database at ``sqlalchemy_url``."""
    url = make_url(sqlalchemy_url)
    fields = {
        "conn_type": "postgres",
        "host": url.host,
        "port": url.port,
        "schema": url.database,
        "login": url.username,
        "password": url.password,
        "extra": {"sqlalchemy_scheme": url.drivername},
    }
    return json.dumps(fields)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def _airflow_executable() -> str:
    return str(Path(sys.executable).parent / "airflow")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:])
    except FileNotFoundError:
        return "(no log)"
