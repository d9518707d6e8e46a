"""The local services the project's commands start on demand, as the configuration asks.

``.env`` / ``.env.example`` decide: ``START_LOCAL_POSTGRES`` (the warehouse, at its connection's
port, with its login, password and database), ``START_LOCAL_SIMULATOR`` (the statistics API at
its connection's address), ``START_LOCAL_SMTP_SINK`` (an SMTP server at the SMTP
connection's address that keeps every message as an ``.eml`` file in ``OUTBOX``) and
``START_LOCAL_PROFILE_RECEIVER`` (the server ``user_profiles_relay`` sends to, at the
``profile_receiver`` connection's address, requiring its password as a bearer token, keeping
what it accepted in ``RECEIVER_STORE``; only for the commands that may run that DAG).
"""

from __future__ import annotations

import logging
import os
import socket
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import requests

from devservices.environment import PROJECT_ROOT, connection_from_env, flag
from devservices.postgres import LocalPostgres
from devservices.profile_receiver import ProfileReceiver
from devservices.simulator.process import SimulatorProcess
from devservices.smtp_sink import SmtpSink
from include.common.email import DEFAULT_SMTP_CONN_ID
from include.learning_platform.api import API_CONN_ID
from include.learning_platform.warehouse import DB_CONN_ID, TEST_DB_CONN_ID
from include.profile_relay.settings import DEFAULT_RECEIVER_CONN_ID

# Local state (database cluster, logs, outbox); tests point it elsewhere.
LOCAL_DIR = Path(os.environ.get("PIPELINES_LOCAL_DIR", PROJECT_ROOT / ".local"))
OUTBOX = LOCAL_DIR / "outbox"
RECEIVER_STORE = LOCAL_DIR / "profile_receiver.sqlite"

log = logging.getLogger("devservices")


def start_local_services(
    services: ExitStack, *, reuse_running: bool = False, profile_receiver: bool = False
) -> LocalPostgres | None:
    """Start what the ``START_LOCAL_*`` flags ask for, stopped when ``services`` closes.

    Returns the local PostgreSQL cluster when one was started (or adopted: a server already
    running in the same cluster is always reused, and left running), for callers that keep more
    databases in it. With ``reuse_running``, a simulator, SMTP sink or profile receiver already
    answering at its connection's address (``make airflow``'s, in another terminal) is used
    instead of a new one. The profile receiver is started only with ``profile_receiver``: no
    other DAG needs its port.
    """
    warehouse = services.enter_context(local_warehouse()) if flag("START_LOCAL_POSTGRES") else None
    if flag("START_LOCAL_SIMULATOR"):
        simulator = local_simulator()
        if reuse_running and _simulator_answers(simulator.base_url):
            log.info("reusing the API simulator already running on %s", simulator.base_url)
        else:
            services.enter_context(simulator)
            log.info("API simulator on %s", simulator.base_url)
    if flag("START_LOCAL_SMTP_SINK"):
        sink = local_smtp_sink()
        if reuse_running and _accepts_connections(sink.host, sink.requested_port):
            log.info("reusing the SMTP server already listening on %s:%s", sink.host, sink.requested_port)
        else:
            services.enter_context(sink)
            log.info("SMTP sink on %s:%s keeps every message in %s", sink.host, sink.port, OUTBOX)
    if profile_receiver and flag("START_LOCAL_PROFILE_RECEIVER"):
        address = connection_from_env(DEFAULT_RECEIVER_CONN_ID)
        if reuse_running and _accepts_connections(address.host, int(address.port)):
            log.info("reusing the profile receiver already listening on %s:%s", address.host, address.port)
        else:
            receiver = services.enter_context(local_profile_receiver())
            log.info("profile receiver on %s keeps what it accepts in %s", receiver.url, RECEIVER_STORE)
    return warehouse


def local_warehouse() -> LocalPostgres:
    """The warehouse's cluster, with the databases of the real days and of test mode."""
    connection = connection_from_env(DB_CONN_ID)
    server = LocalPostgres(
        state_dir=LOCAL_DIR / "postgres",
        port=int(connection.port),
        user=connection.login,
        password=connection.password,
    )
    server.start()
    databases = [connection.schema]
    scratch = connection_from_env(TEST_DB_CONN_ID)
    if (scratch.host, scratch.port) == (connection.host, connection.port):
        databases.append(scratch.schema)
    for database in databases:
        server.create_database(database)
    log.info("local PostgreSQL on 127.0.0.1:%s, databases %s", connection.port, ", ".join(databases))
    return server


def local_simulator() -> SimulatorProcess:
    """The simulator at the API connection's address, accepting its login and password."""
    connection = connection_from_env(API_CONN_ID)
    address = urlsplit(connection.host)
    simulator = SimulatorProcess(
        host=address.hostname,
        port=connection.port or address.port,
        client=connection.login,
        client_key=connection.password,
        records_per_day=int(os.environ.get("SIMULATOR_RECORDS_PER_DAY", "15000")),
        log_file=log_path("simulator"),
    )
    return simulator


def local_smtp_sink() -> SmtpSink:
    connection = connection_from_env(DEFAULT_SMTP_CONN_ID)
    return SmtpSink(OUTBOX, host=connection.host, port=int(connection.port))


def local_profile_receiver() -> ProfileReceiver:
    """The receiver at the ``profile_receiver`` connection's address, with its password as token."""
    connection = connection_from_env(DEFAULT_RECEIVER_CONN_ID)
    return ProfileReceiver(
        RECEIVER_STORE, host=connection.host, port=int(connection.port), token=connection.password
    )


def _simulator_answers(base_url: str) -> bool:
    try:
        return requests.get(f"{base_url}/_simulator/health", timeout=2).ok
    except requests.RequestException:
        return False


def _accepts_connections(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex((host, port)) == 0


def log_path(name: str) -> Path:
    directory = LOCAL_DIR / "logs"
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{name}.log"
