"""Sending a prebuilt email through an Airflow SMTP connection (shared by every pipeline).

The provider's ``SmtpHook`` does the connecting: host and port, login, implicit SSL and
STARTTLS all come from the connection (see below), so one connection id is the whole
configuration. Pipelines build a complete ``email.message.EmailMessage`` themselves (plain
text, HTML alternative, inline pictures), which the hook's own ``send_email_smtp`` cannot.

Connection extras of the smtp provider (JSON form: real booleans; in URI form every query
value is a string, and ``?disable_ssl=false`` would still disable SSL):

* a plain local server or sink: ``{"disable_ssl": true, "disable_tls": true}``
* STARTTLS (port 587) with login and password: ``{"disable_ssl": true}``
* implicit SSL (port 465) with login and password: ``{"disable_tls": true}``
* optional: ``"from_email"`` (the default sender), ``"timeout"`` in seconds (30),
  ``"retry_limit"`` (5, reconnects after the server hangs up during the greeting only),
  ``"ssl_context": "none"`` to skip certificate checks (a lab server only).

Failures propagate as :class:`EmailNotSent`, naming the connection and what to check, so the
task fails and Airflow retries it; the password never appears in a message or a log line.

SMTP has no idempotency key, and there is one moment after which a failure no longer proves that
nothing was sent: once the message's content goes to the server, a lost answer may hide a 250.
A failure after that moment that is not the server's own refusal raises
:class:`EmailDeliveryUnknown` instead of :class:`EmailNotSent`; a caller that must not send twice
records the moment itself by passing ``before_data`` (see learning_platform/report_delivery.py).
"""

from __future__ import annotations

import copy
import logging
import re
import smtplib
import ssl
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses

log = logging.getLogger(__name__)

# Airflow's conventional SMTP connection id: reports and failure alerts both go through it.
DEFAULT_SMTP_CONN_ID = "smtp_default"

_SEPARATORS = re.compile(r"[,;]")
# A plain address, nothing more ("Name <addr>" is not accepted); the domain may be a bare host
# name such as "localhost" for local sinks.
_ADDRESS = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)


class EmailNotSent(RuntimeError):
    """The message was not handed over to the SMTP server, or the server refused it (nothing was sent)."""


class EmailDeliveryUnknown(RuntimeError):
    """The message's content went to the server, whose answer was lost: it may have been accepted."""


def parse_recipients(value: str | Sequence[str]) -> tuple[str, ...]:
    """Addresses from ``"a@x.org, b@x.org; c@x.org"`` or a list of such strings, trimmed, once each.

    Raises ValueError naming the first value that is not an address, or when there is none.
    """
    pieces = [value] if isinstance(value, str) else list(value)
    addresses: dict[str, str] = {}
    for piece in pieces:
        if not isinstance(piece, str):
            raise ValueError(f"email recipients must be strings, got {piece!r}")
        for candidate in _SEPARATORS.split(piece):
            address = candidate.strip()
            if not address:
                continue
            if not _ADDRESS.fullmatch(address):
                raise ValueError(f"not an email address: {address!r} (separate addresses with ',' or ';')")
            addresses.setdefault(address.lower(), address)
    if not addresses:
        raise ValueError(f"no email recipients given in {value!r}")
    return tuple(addresses.values())


def send_message(
    message: EmailMessage, *, conn_id: str, before_data: Callable[[], None] | None = None
) -> None:
    """Send ``message`` to its To, Cc and Bcc addresses through the SMTP connection ``conn_id``.

    ``From`` defaults to the connection's ``from_email`` extra and ``Date`` to now; the caller's
    message is not modified. Raises ValueError for a message that cannot be sent as it is,
    :class:`EmailNotSent` when the server cannot be reached, refuses the login, refuses every
    recipient or refuses the message (Airflow then retries the task), and lets Airflow's error
    through when the connection is not defined.

    ``before_data`` is called once the server has accepted the sender and a recipient, right
    before the content goes out; whatever it raises stops the sending with nothing sent. From
    that moment on, a connection lost or timed out before the server's answer raises
    :class:`EmailDeliveryUnknown`.
    """
    from airflow.providers.smtp.hooks.smtp import SmtpHook  # deferred: heavy, and parsing stays light
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowException

    recipients = [address for _, address in getaddresses(_all(message, "To", "Cc", "Bcc")) if address]
    if not recipients:
        raise ValueError(f"the message {message['Subject']!r} has no To, Cc or Bcc address")
    connection = Connection.get(conn_id)
    extra = connection.extra_dejson
    outgoing = message
    if message["From"] is None or message["Date"] is None:
        outgoing = copy.deepcopy(message)
        if outgoing["From"] is None:
            sender = extra.get("from_email")
            if not sender:
                raise ValueError(
                    f"the message {message['Subject']!r} has no From address and the SMTP connection "
                    f"{conn_id!r} has no 'from_email' extra: set one of them"
                )
            outgoing["From"] = sender
        if outgoing["Date"] is None:
            outgoing["Date"] = format_datetime(datetime.now(UTC))

    where = f"SMTP connection {conn_id!r} ({connection.host}:{connection.port})"
    started = time.monotonic()
    hook = SmtpHook(smtp_conn_id=conn_id)
    handed_over = False
    try:
        with hook:
            # The hook only sends messages it builds itself (HTML, files as attachments); its
            # connected, logged-in client sends our prebuilt multipart message as it is.
            client = hook._smtp_client
            # smtplib has no hook between RCPT and DATA. This client is ours alone and closed
            # below, so wrapping its data() is the least code that keeps the rest of
            # send_message (Bcc stripping, SMTPUTF8, refused recipients) as it is.
            send_content = client.data

            def data(content: bytes) -> tuple[int, bytes]:
                nonlocal handed_over
                if before_data is not None:
                    before_data()
                handed_over = True
                return send_content(content)

            client.data = data
            refused = client.send_message(outgoing)
    except (OSError, AirflowException) as error:  # smtplib.SMTPException is an OSError
        problem = f"could not send {message['Subject']!r} through {where}: {_describe(error)}"
        if handed_over and not isinstance(error, smtplib.SMTPResponseException):
            raise EmailDeliveryUnknown(
                f"{problem}, after its content went to the server: it may have been delivered "
                f"(Message-ID {message['Message-ID']}). Look for it in the recipients' mailboxes "
                "or the server's log before sending it again."
            ) from error
        raise EmailNotSent(f"{problem}. {_hint(error, extra)}") from error
    finally:
        # __exit__ does not run when __enter__ fails (a refused login): close that socket too.
        if hook._smtp_client is not None:
            hook._smtp_client.close()
    if refused:
        # Raising would make Airflow retry and mail the accepted recipients a second time.
        log.warning(
            "the server refused %d of %d recipients of %r: %s",
            len(refused),
            len(recipients),
            message["Subject"],
            ", ".join(f"{address} ({code})" for address, (code, _) in refused.items()),
        )
    log.info(
        "sent %r to %d recipients through %s in %.1f s",
        message["Subject"],
        len(recipients) - len(refused),
        where,
        time.monotonic() - started,
    )


def _all(message: EmailMessage, *names: str) -> list[str]:
    return [str(value) for name in names for value in message.get_all(name, [])]


def _describe(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPResponseException):
        text = (
            error.smtp_error.decode(errors="replace")
            if isinstance(error.smtp_error, bytes)
            else error.smtp_error
        )
        return f"{type(error).__name__} {error.smtp_code} {text}"
    return f"{type(error).__name__}: {error}"


def _hint(error: BaseException, extra: dict) -> str:
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return "Check the connection's login and password."
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return "Check the recipients' addresses."
    if isinstance(error, ssl.SSLError):
        return (
            "Check the TLS settings: extras disable_ssl (implicit SSL, port 465) and disable_tls "
            "(STARTTLS, port 587) must match the server, and its certificate must be trusted."
        )
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return "The server does not offer STARTTLS or AUTH: check the extras disable_tls and the login."
    if not isinstance(error, OSError) or isinstance(
        error, ConnectionError | TimeoutError | smtplib.SMTPServerDisconnected
    ):  # the hook's AirflowException: the server hung up on every reconnection
        return "Is the server up, and are the host and port right? Airflow retries the task."
    settings = {key: extra[key] for key in ("disable_ssl", "disable_tls", "timeout") if key in extra}
    return f"Check the connection's host, port and extras {settings}."
