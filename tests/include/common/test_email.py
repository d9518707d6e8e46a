"""Sending prebuilt messages through Airflow SMTP connections to real aiosmtpd servers.

Every server runs in-process on a free port: plain, STARTTLS with login (a ``trustme`` CA
that the client trusts through ``SSL_CERT_FILE``), implicit SSL. Connections come from
``AIRFLOW_CONN_<ID>`` environment variables in JSON form, as a deployment would give them.
"""

from __future__ import annotations

import io
import json
import logging
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from airflow.sdk.exceptions import AirflowNotFoundException
from PIL import Image

from devservices.smtp_sink import AnyPortController
from include.common.email import EmailDeliveryUnknown, EmailNotSent, parse_recipients, send_message

HOST = "127.0.0.1"
LOGIN = "reports@example.org"
PASSWORD = "Correct-Horse-42"
WRONG_PASSWORD = "Wrong-Battery-17"
SENDER = "Learning platform <reports@example.org>"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: str | None
    tls: bool


class RecordingHandler:
    """Keeps what arrives, with the session's login, in memory."""

    def __init__(self, refuse: frozenset[str] = frozenset()) -> None:
        self.received: list[Received] = []
        self.refuse = refuse

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        auth = session.auth_data
        self.received.append(
            Received(
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                message=BytesParser(policy=policy.default).parsebytes(envelope.original_content),
                login=auth.login.decode() if isinstance(auth, LoginPassword) else None,
                tls=session.ssl is not None,
            )
        )
        return "250 OK"


@dataclass
class Authenticator:
    """Accepts LOGIN / PASSWORD only; ``handled=False`` makes a refusal a prompt 535."""

    mechanisms: list[str] = field(default_factory=list)

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        self.mechanisms.append(mechanism)
        valid = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == LOGIN.encode()
            and auth_data.password == PASSWORD.encode()
        )
        return AuthResult(success=valid, handled=False, auth_data=auth_data if valid else None)


@dataclass
class Server:
    controller: AnyPortController
    handler: RecordingHandler
    authenticator: Authenticator
    running: bool = True

    @property
    def port(self) -> int:
        return self.controller.port

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def stop(self) -> None:
        if self.running:
            self.controller.stop()
            self.running = False


@pytest.fixture(autouse=True)
def _isolated_airflow(airflow_home: Path) -> None:
    """Connections resolve from the environment, with a throwaway AIRFLOW_HOME behind them."""


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST, "localhost").configure_cert(context)
    return context


@pytest.fixture
def trusted_ca(ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client (the hook's ssl.create_default_context) trusts the test CA."""
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., Server]]:
    """Start aiosmtpd servers on free ports (with any SMTP options); all stopped afterwards."""
    servers: list[Server] = []
    server_log = logging.getLogger("mail.log")  # aiosmtpd: a line per SMTP command at INFO
    level = server_log.level
    server_log.setLevel(logging.WARNING)

    def start(*, refuse: frozenset[str] = frozenset(), **options: Any) -> Server:
        handler, authenticator = RecordingHandler(refuse), Authenticator()
        if options.pop("login", False):
            options["authenticator"] = authenticator
        controller = AnyPortController(handler, hostname=HOST, port=0, server_hostname="smtp.test", **options)
        controller.start()
        servers.append(Server(controller, handler, authenticator))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()
    server_log.setLevel(level)


def use_connection(
    monkeypatch: pytest.MonkeyPatch,
    conn_id: str,
    port: int,
    *,
    password: str | None = None,
    **extra: Any,
) -> str:
    """An Airflow connection in JSON form in ``AIRFLOW_CONN_<ID>``; returns its id."""
    connection: dict[str, Any] = {
        "conn_type": "smtp",
        "host": HOST,
        "port": port,
        "extra": {"timeout": 10, **extra},
    }
    if password is not None:
        connection |= {"login": LOGIN, "password": password}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
    return conn_id


def report_message(*, sender: str | None = SENDER) -> EmailMessage:
    """A message shaped like the daily report: text, HTML alternative, inline chart."""
    message = EmailMessage()
    message["Subject"] = "Отчёт за 2026-11-22 <test>"
    if sender:
        message["From"] = sender
    message["To"] = "analyst@example.org, head@example.org"
    message["Cc"] = "team@example.org"
    message["Bcc"] = "archive@example.org"
    message.set_content("Figures: 12,345 submits\n")
    message.add_alternative('<p>Figures</p><img src="cid:chart@test">', subtype="html")
    message.get_payload()[1].add_related(CHART, maintype="image", subtype="png", cid="<chart@test>")
    return message


def _chart() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (72, 30), "#1a73e8").save(buffer, format="PNG")
    return buffer.getvalue()


CHART = _chart()
ALL_RECIPIENTS = ["analyst@example.org", "head@example.org", "team@example.org", "archive@example.org"]


def assert_is_the_report(received: Received) -> None:
    message = received.message
    assert message["Subject"] == "Отчёт за 2026-11-22 <test>"
    assert sorted(received.rcpt_tos) == sorted(ALL_RECIPIENTS)
    assert message["Bcc"] is None, "Bcc is an envelope recipient only"
    plain = message.get_body(preferencelist=("plain",))
    page = message.get_body(preferencelist=("html",))
    assert plain is not None
    assert page is not None
    assert plain.get_content().splitlines() == ["Figures: 12,345 submits"]
    assert 'src="cid:chart@test"' in page.get_content()
    related = message.get_payload()[1]
    assert related.get_content_type() == "multipart/related"
    image = related.get_payload()[1]
    assert image["Content-ID"] == "<chart@test>"
    assert image.get_content() == CHART


# --- delivery ----------------------------------------------------------------------------------


def test_a_plain_server_receives_the_whole_message_for_every_recipient(smtp_server, monkeypatch) -> None:
    server = smtp_server()
    conn_id = use_connection(monkeypatch, "smtp_plain", server.port, disable_ssl=True, disable_tls=True)
    message = report_message()

    send_message(message, conn_id=conn_id)

    [received] = server.received
    assert_is_the_report(received)
    assert received.mail_from == "reports@example.org"
    assert received.message["From"] == SENDER
    assert received.message["Date"] is not None, "stamped when sent"
    assert received.login is None
    assert message["Date"] is None, "the caller's message is left as it was"


def test_from_defaults_to_the_connections_from_email(smtp_server, monkeypatch) -> None:
    server = smtp_server()
    conn_id = use_connection(
        monkeypatch,
        "smtp_from_email",
        server.port,
        disable_ssl=True,
        disable_tls=True,
        from_email="noreply@example.org",
    )
    message = report_message(sender=None)

    send_message(message, conn_id=conn_id)

    [received] = server.received
    assert received.message["From"] == "noreply@example.org"
    assert received.mail_from == "noreply@example.org"
    assert message["From"] is None


def test_a_message_without_any_sender_is_refused_naming_the_connection(smtp_server, monkeypatch) -> None:
    server = smtp_server()
    conn_id = use_connection(monkeypatch, "smtp_no_sender", server.port, disable_ssl=True, disable_tls=True)

    with pytest.raises(ValueError, match=r"'smtp_no_sender' has no 'from_email' extra"):
        send_message(report_message(sender=None), conn_id=conn_id)
    assert server.received == []


def test_a_message_without_recipients_is_refused(smtp_server, monkeypatch) -> None:
    server = smtp_server()
    conn_id = use_connection(monkeypatch, "smtp_no_rcpt", server.port, disable_ssl=True, disable_tls=True)
    message = report_message()
    for header in ("To", "Cc", "Bcc"):
        del message[header]

    with pytest.raises(ValueError, match="no To, Cc or Bcc"):
        send_message(message, conn_id=conn_id)
    assert server.received == []


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_starttls_with_login_delivers_over_tls_as_the_authenticated_user(
    mechanism, smtp_server, server_tls, trusted_ca, monkeypatch
) -> None:
    others = {"PLAIN": ["LOGIN"], "LOGIN": ["PLAIN"]}[mechanism]
    server = smtp_server(
        login=True, tls_context=server_tls, require_starttls=True, auth_exclude_mechanism=others
    )
    conn_id = use_connection(
        monkeypatch, f"smtp_starttls_{mechanism.lower()}", server.port, password=PASSWORD, disable_ssl=True
    )

    send_message(report_message(), conn_id=conn_id)

    [received] = server.received
    assert_is_the_report(received)
    assert received.login == LOGIN
    assert received.tls, "STARTTLS came before the login and the message"
    assert server.authenticator.mechanisms == [mechanism]


def test_implicit_ssl_with_login_delivers(smtp_server, server_tls, trusted_ca, monkeypatch) -> None:
    # aiosmtpd does not count implicit TLS as TLS for AUTH, hence auth_require_tls=False.
    server = smtp_server(login=True, ssl_context=server_tls, auth_require_tls=False)
    conn_id = use_connection(monkeypatch, "smtp_ssl", server.port, password=PASSWORD, disable_tls=True)

    send_message(report_message(), conn_id=conn_id)

    [received] = server.received
    assert_is_the_report(received)
    assert received.login == LOGIN, "the server speaks TLS only: it arrived over TLS"


# --- failures ----------------------------------------------------------------------------------


def test_a_wrong_password_fails_fast_with_a_clear_error_that_never_shows_it(
    smtp_server, server_tls, trusted_ca, monkeypatch, caplog
) -> None:
    server = smtp_server(login=True, tls_context=server_tls, require_starttls=True)
    conn_id = use_connection(
        monkeypatch, "smtp_bad_login", server.port, password=WRONG_PASSWORD, disable_ssl=True
    )
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()

    with pytest.raises(EmailNotSent) as caught:
        send_message(report_message(), conn_id=conn_id)

    assert time.monotonic() - started < 5, "a 535 answer, not a 30 s client timeout"
    error = str(caught.value)
    assert "'smtp_bad_login'" in error
    assert "535" in error
    assert "login and password" in error
    assert WRONG_PASSWORD not in error
    assert WRONG_PASSWORD not in caplog.text
    assert server.received == []


def test_a_server_that_is_down_raises_so_airflow_retries_and_nothing_is_sent(
    smtp_server, monkeypatch
) -> None:
    server = smtp_server()
    conn_id = use_connection(monkeypatch, "smtp_down", server.port, disable_ssl=True, disable_tls=True)
    server.stop()

    with pytest.raises(EmailNotSent, match=r"'smtp_down' \(127\.0\.0\.1:\d+\).*Is the server up") as caught:
        send_message(report_message(), conn_id=conn_id)

    assert isinstance(caught.value.__cause__, ConnectionRefusedError)
    assert server.received == []


def test_an_untrusted_certificate_is_refused_with_a_tls_hint(smtp_server, server_tls, monkeypatch) -> None:
    server = smtp_server(login=True, tls_context=server_tls, require_starttls=True)
    conn_id = use_connection(monkeypatch, "smtp_untrusted", server.port, password=PASSWORD, disable_ssl=True)

    with pytest.raises(EmailNotSent, match="certificate must be trusted") as caught:
        send_message(report_message(), conn_id=conn_id)

    assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)
    assert server.received == []


def test_a_refused_recipient_is_logged_and_the_others_still_get_the_message(
    smtp_server, monkeypatch, caplog
) -> None:
    server = smtp_server(refuse=frozenset({"team@example.org"}))
    conn_id = use_connection(monkeypatch, "smtp_refusing", server.port, disable_ssl=True, disable_tls=True)
    caplog.set_level(logging.INFO, logger="include.common.email")

    send_message(report_message(), conn_id=conn_id)

    [received] = server.received
    assert sorted(received.rcpt_tos) == sorted(set(ALL_RECIPIENTS) - {"team@example.org"})
    assert "refused 1 of 4 recipients" in caplog.text
    assert "team@example.org (550)" in caplog.text


def test_a_server_that_refuses_every_recipient_raises(smtp_server, monkeypatch) -> None:
    server = smtp_server(refuse=frozenset(ALL_RECIPIENTS))
    conn_id = use_connection(
        monkeypatch, "smtp_refusing_all", server.port, disable_ssl=True, disable_tls=True
    )

    with pytest.raises(EmailNotSent, match=r"SMTPRecipientsRefused.*Check the recipients"):
        send_message(report_message(), conn_id=conn_id)
    assert server.received == []


def test_an_undefined_connection_is_named_in_the_error(monkeypatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_NOWHERE", raising=False)

    with pytest.raises(AirflowNotFoundException, match="smtp_nowhere"):
        send_message(report_message(), conn_id="smtp_nowhere")


# --- the moment the content goes out -----------------------------------------------------------


class RefusingContent(RecordingHandler):
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "554 5.6.0 Message refused by policy"


class HangingUpAfterContent(RecordingHandler):
    """Keeps the message, then hangs up instead of answering 250."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        server.transport.abort()
        return answer


def start_with(handler: RecordingHandler) -> AnyPortController:
    controller = AnyPortController(handler, hostname=HOST, port=0, server_hostname="smtp.test")
    controller.start()
    return controller


def test_before_data_runs_once_after_the_server_took_the_recipients_and_before_the_content(
    smtp_server, monkeypatch
) -> None:
    server = smtp_server()
    conn_id = use_connection(monkeypatch, "smtp_before_data", server.port, disable_ssl=True, disable_tls=True)
    seen: list[int] = []

    send_message(report_message(), conn_id=conn_id, before_data=lambda: seen.append(len(server.received)))

    assert seen == [0]
    assert len(server.received) == 1


def test_an_error_in_before_data_stops_the_sending_with_nothing_sent(smtp_server, monkeypatch) -> None:
    server = smtp_server()
    conn_id = use_connection(monkeypatch, "smtp_stopped", server.port, disable_ssl=True, disable_tls=True)

    def refuse() -> None:
        raise LookupError("another try took over")

    with pytest.raises(LookupError, match="another try took over"):
        send_message(report_message(), conn_id=conn_id, before_data=refuse)
    assert server.received == []


def test_content_the_server_refuses_is_not_sent(monkeypatch) -> None:
    handler = RefusingContent()
    controller = start_with(handler)
    try:
        conn_id = use_connection(
            monkeypatch, "smtp_refusing_content", controller.port, disable_ssl=True, disable_tls=True
        )
        with pytest.raises(EmailNotSent, match="SMTPDataError 554"):
            send_message(report_message(), conn_id=conn_id)
    finally:
        controller.stop()


def test_an_answer_lost_after_the_content_went_out_is_reported_as_unknown_not_as_unsent(
    monkeypatch,
) -> None:
    handler = HangingUpAfterContent()
    controller = start_with(handler)
    message = report_message()
    message["Message-ID"] = "<report.1@example.org>"
    try:
        conn_id = use_connection(
            monkeypatch, "smtp_hanging_up", controller.port, disable_ssl=True, disable_tls=True
        )
        with pytest.raises(EmailDeliveryUnknown, match=r"may have been delivered \(Message-ID <report.1@"):
            send_message(message, conn_id=conn_id)
    finally:
        controller.stop()
    assert len(handler.received) == 1, "it did arrive"


# --- recipients --------------------------------------------------------------------------------


def test_recipients_are_split_on_commas_and_semicolons_and_trimmed() -> None:
    assert parse_recipients(" a@example.org, b@example.org ;c@example.org ,") == (
        "a@example.org",
        "b@example.org",
        "c@example.org",
    )


def test_recipients_may_come_as_a_list_and_are_kept_once_each() -> None:
    assert parse_recipients(["a@example.org", "b@example.org; A@example.org", "ops@localhost"]) == (
        "a@example.org",
        "b@example.org",
        "ops@localhost",
    )


@pytest.mark.parametrize(
    ("value", "bad"),
    [
        ("a@example.org, not an address", "not an address"),
        ("a@example.org; b@", "b@"),
        (["Ops <ops@example.org>"], "Ops <ops@example.org>"),
        ("a@example.org\nBcc: x@evil.example", "a@example.org\nBcc: x@evil.example"),
    ],
)
def test_a_value_that_is_not_an_address_is_named(value, bad) -> None:
    with pytest.raises(ValueError, match="not an email address") as caught:
        parse_recipients(value)
    assert repr(bad) in str(caught.value)


@pytest.mark.parametrize("value", ["", " , ; ", []])
def test_no_recipients_at_all_is_an_error(value) -> None:
    with pytest.raises(ValueError, match="no email recipients"):
        parse_recipients(value)
