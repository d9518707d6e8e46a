"""No secret reaches a log, an email or an exception: one full run of the DAG, then every file it wrote.

The run is ``make run``'s (``python -m devservices.local_run``) with distinctive secrets of every
kind the pipeline holds: the API client key, the warehouse password, an SMTP password (a real
STARTTLS server that requires AUTH, started here) and a Google service-account key (a freshly
generated one; the token endpoint is a local server that refuses the key, so ``publish_report``
fails and its exception path, the retry and the alert email are scanned too). Every file the
run left (Airflow's task logs, the launcher's logs, the PostgreSQL cluster's directory, the
outbox) and its stdout/stderr are searched for each secret as it is, URL-encoded, base64-encoded
(at each alignment) and, for the key, for every line of its body.

A deployment whose scheduler runs the tasks (``make airflow``, compose) writes them elsewhere:
workers write task logs under ``AIRFLOW_HOME/logs`` and each component logs on its own. The
same scan reads that folder after the Celery deployment's runs in
``tests/deploy/test_celery_executor.py``, which starts such a deployment anyway.

The connection helpers' own exceptions are checked directly too: a bad or unreachable endpoint
must not put the password into the message or the traceback.
"""

from __future__ import annotations

import json
import logging
import secrets
import ssl
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from devservices.environment import PROJECT_ROOT, environment_without
from devservices.postgres import LocalPostgres, free_port
from devservices.smtp_sink import AnyPortController, OutboxHandler
from include.common.http import RetryPolicy
from include.common.postgres import WarehouseUnavailable, connect, conninfo_from_connection
from include.learning_platform.api import LearningPlatformClient
from include.learning_platform.extract import extract_interval
from tests.fakes.google_sheets import service_account_info
from tests.include.learning_platform.stages import DAG_TASKS, DAY
from tests.security.secret_scan import Scan, encoded_forms, key_body_lines
from tests.test_end_to_end import api_connection, warehouse_connection

pytestmark = pytest.mark.timeout(300)

log = logging.getLogger(__name__)

DATE = "2026-11-20"
# Distinctive per run, and with characters that URL and JSON encodings change.
API_KEY = f"Api+Key/{secrets.token_hex(8)}"
DB_PASSWORD = f"Wh-Pass@{secrets.token_hex(8)}"
SMTP_LOGIN = "reports@e2e.test"
SMTP_PASSWORD = f"Smtp&Pass {secrets.token_hex(8)}"


# --- services the run talks to -----------------------------------------------------------------


class Authenticator:
    """Accepts SMTP_LOGIN/SMTP_PASSWORD only; counts the logins that succeeded."""

    def __init__(self) -> None:
        self.logins = 0

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        valid = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == SMTP_LOGIN.encode()
            and auth_data.password == SMTP_PASSWORD.encode()
        )
        self.logins += valid
        # handled=False: a refusal gets a prompt 535 instead of a 30 s hang.
        return AuthResult(success=valid, handled=False)


@dataclass
class MailServer:
    port: int
    outbox: Path
    authenticator: Authenticator
    ca_bundle: Path


@pytest.fixture(scope="module")
def mail_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailServer]:
    """A real SMTP server on a free port: STARTTLS required, then AUTH required; keeps .eml files."""
    state = tmp_path_factory.mktemp("smtp")
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    ca_bundle = state / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_bundle))
    authenticator = Authenticator()
    outbox = state / "outbox"
    outbox.mkdir()
    controller = AnyPortController(
        OutboxHandler(outbox),
        hostname="127.0.0.1",
        port=0,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )
    controller.start()
    try:
        yield MailServer(controller.port, outbox, authenticator, ca_bundle)
    finally:
        controller.stop()


class RefusingTokenEndpoint(BaseHTTPRequestHandler):
    """Google's token endpoint as it answers a deleted key: 400 invalid_grant."""

    requests: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        type(self).requests.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        body = json.dumps({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads what it needs from ``requests``."""


@pytest.fixture(scope="module")
def token_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), RefusingTokenEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/token"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Run:
    state: Path
    dag_test_log: Path
    result: subprocess.CompletedProcess[bytes]
    needles: dict[str, set[bytes]]
    outbox: Path
    logins: int
    token_requests: int


@pytest.fixture(scope="module")
def secret_run(
    tmp_path_factory: pytest.TempPathFactory, mail_server: MailServer, token_endpoint: str
) -> Iterator[Run]:
    state = tmp_path_factory.mktemp("secret_run")
    db_port, api_port = free_port(), free_port()
    google_key = service_account_info(token_uri=token_endpoint)
    env = environment_without()
    smtp_extra = {"disable_ssl": True, "from_email": SMTP_LOGIN, "timeout": 10}
    env.update(
        {
            "PIPELINES_LOCAL_DIR": str(state),
            "AIRFLOW_HOME": str(state / "airflow"),
            "START_LOCAL_POSTGRES": "1",
            "START_LOCAL_SIMULATOR": "1",
            "START_LOCAL_SMTP_SINK": "0",
            "AIRFLOW_CONN_LEARNING_PLATFORM_DB": warehouse_connection(db_port, "warehouse", DB_PASSWORD),
            "AIRFLOW_CONN_LEARNING_PLATFORM_TEST_DB": warehouse_connection(
                db_port, "warehouse_test", DB_PASSWORD
            ),
            "AIRFLOW_CONN_LEARNING_PLATFORM_API": api_connection(
                f"http://127.0.0.1:{api_port}", "e2e-client", API_KEY
            ),
            "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(
                {
                    "conn_type": "smtp",
                    "host": "127.0.0.1",
                    "port": mail_server.port,
                    "login": SMTP_LOGIN,
                    "password": SMTP_PASSWORD,
                    "extra": smtp_extra,
                }
            ),
            "AIRFLOW_CONN_LEARNING_PLATFORM_SHEETS": json.dumps(
                {"conn_type": "google_cloud_platform", "extra": {"keyfile_dict": json.dumps(google_key)}}
            ),
            "AIRFLOW_VAR_LEARNING_PLATFORM_REPORT": json.dumps(
                {"recipients": ["analysts@e2e.test"], "spreadsheet": "fake-spreadsheet-key"}
            ),
            "AIRFLOW_VAR_ALERT_RECIPIENTS": "oncall@e2e.test",
            "SIMULATOR_RECORDS_PER_DAY": "2400",
            # One try per task: the failing publish_report alerts at once instead of after a retry.
            "AIRFLOW__PIPELINES__TASK_RETRIES": "0",
            # The SMTP client (ssl.create_default_context) trusts the test CA.
            "SSL_CERT_FILE": str(mail_server.ca_bundle),
        }
    )
    RefusingTokenEndpoint.requests.clear()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "devservices.local_run", "--date", DATE, "--test-mode"],
            env=env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            timeout=240,
            check=False,
        )
        needles = {
            "API client key": encoded_forms(API_KEY),
            "warehouse password": encoded_forms(DB_PASSWORD),
            "SMTP password": encoded_forms(SMTP_PASSWORD),
            "Google private key": key_body_lines(google_key["private_key"]),
        }
        yield Run(
            state,
            state / "logs" / f"dags-test-{DATE}.log",
            result,
            needles,
            mail_server.outbox,
            mail_server.authenticator.logins,
            len(RefusingTokenEndpoint.requests),
        )
    finally:
        # `make run` keeps its cluster between runs on purpose; a test's cluster must go.
        LocalPostgres(state_dir=state / "postgres", port=db_port).destroy()


# --- the run -----------------------------------------------------------------------------------


def test_the_run_used_every_secret(secret_run: Run) -> None:
    # Scanning for secrets nobody used would prove nothing: each was really presented.
    task_logs = secret_run.dag_test_log.read_text(errors="replace")
    assert "attempts published" in task_logs, "extract and load never ran with the API key and the password"
    assert secret_run.logins >= 2, "the SMTP password did not log in for the report and the alert"
    assert secret_run.token_requests >= 1, "the Google key never signed a token request"
    subjects = sorted(path.read_text(errors="replace") for path in secret_run.outbox.glob("*.eml"))
    assert any("[Airflow alert] learning_platform_etl.publish_report failed" in mail for mail in subjects)
    assert any("report NOT updated" in mail for mail in subjects)


def test_no_secret_in_any_file_the_run_wrote_nor_in_its_output(secret_run: Run) -> None:
    scan = Scan()
    scan.search("stdout", secret_run.result.stdout, secret_run.needles)
    scan.search("stderr", secret_run.result.stderr, secret_run.needles)
    for root in (secret_run.state, secret_run.outbox):
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                scan.files.append(path)
                scan.search(str(path.relative_to(root.parent)), path.read_bytes(), secret_run.needles)

    # The scan read what matters. `airflow dags test` runs the tasks in its own process: their
    # logs are its output, which the launcher keeps in dags-test-<date>.log.
    assert secret_run.dag_test_log in scan.files
    task_logs = secret_run.dag_test_log.read_text(errors="replace")
    assert [task for task in DAG_TASKS if f"[DAG TEST] end task task_id={task} " not in task_logs] == []
    assert "Google refused the service account's key" in task_logs, "the failing task's error is not logged"
    names = {path.name for path in scan.files}
    assert {"simulator.log", "postgres.log", "airflow.db", "airflow.cfg"} <= names
    assert sum(name.endswith(".eml") for name in names) >= 2
    log.info(
        "scanned the run's stdout/stderr and %d files, %s bytes: %s",
        len(scan.files),
        f"{scan.bytes_read:,}",
        ", ".join(str(path) for path in scan.files),
    )
    assert scan.found == []


# --- exceptions of the connection helpers ------------------------------------------------------


@dataclass
class FakeConnection:
    """The fields of an Airflow Connection that conninfo_from_connection reads."""

    host: str
    port: int
    schema: str
    login: str
    password: str
    extra_dejson: dict[str, Any] = field(default_factory=dict)


def everything_said(error: BaseException) -> str:
    """The message, the repr and the traceback as a log prints it (chained errors included)."""
    return "\n".join([str(error), repr(error), *traceback.format_exception(error)])


@pytest.mark.parametrize("where", ["unreachable port", "wrong password"])
def test_a_failed_warehouse_connection_does_not_carry_the_password(where: str, postgres_server) -> None:
    port = free_port() if where == "unreachable port" else postgres_server.port
    connection = FakeConnection(
        "127.0.0.1", port, "postgres", "postgres", DB_PASSWORD, {"connect_timeout": 3}
    )

    with pytest.raises(WarehouseUnavailable) as raised:
        connect(conninfo_from_connection(connection), conn_id="learning_platform_db", application_name="t")

    said = everything_said(raised.value)
    assert "learning_platform_db" in said
    assert not {form for form in encoded_forms(DB_PASSWORD) if form.decode() in said}


def test_a_failed_api_request_does_not_carry_the_client_key(warehouse) -> None:
    client = LearningPlatformClient(
        f"http://127.0.0.1:{free_port()}",
        "e2e-client",
        API_KEY,
        timeout=(1.0, 1.0),
        retry=RetryPolicy(attempts=2, initial_wait_s=0, max_wait_s=0),
    )
    window = type(DAY)(DAY.start, DAY.start + (DAY.end - DAY.start) / 24)

    with client, pytest.raises(Exception) as raised:  # noqa: PT011 - any error: its text is the point
        extract_interval(warehouse, client, window, window=window.end - window.start, dag_run_id="t")

    said = everything_said(raised.value)
    assert "connection failed" in said
    assert not {form for form in encoded_forms(API_KEY) if form.decode() in said}
