"""Exactly one report email per run: the warehouse remembers what was sent, so a retry never mails twice.

SMTP has no idempotency key. A server that answered 250 has the message, and nothing in the
protocol lets a client ask later whether it did; a worker killed between that 250 and the task's
success used to mail the report again on the retry. So each report email gets a row in
``learning_platform.report_emails``, keyed by the day, the run id and the run's clear number, and
goes through three states, each committed on its own before the next step starts:

1. **prepared**: the row holds the Message-ID, content digest and recipients of the message about
   to go out. Committed before connecting to the server.
2. **handed over**: set right before the message's content goes to the server (after it accepted
   the sender and recipients), by a compare-and-set on the Message-ID, so that of two live tries
   of one run (a "zombie" Airflow gave up on, and its retry) only one hands a message over.
3. **sent**: set when the server answered 250.

What a try finds decides what it does:

==========================  ==========================================  ==========================
the run's row               what it means                               the try
==========================  ==========================================  ==========================
none, or prepared           no message of the run left for the server   takes the row over with its
                                                                        own message and sends it
sent                        the server has the run's message            sends nothing, succeeds
handed over, not sent       a try died (or lost the server's answer)    sends nothing, fails for
                            between handing over and recording 250      good (DeliveryUnconfirmed)
==========================  ==========================================  ==========================

A server that refuses the content with an answer of its own (5xx, 4xx) delivered nothing: the row
goes back to prepared and the retry sends. A retry keeps the run's clear number, so it never sends
a second copy; a new run of the date, or clearing the run (Airflow then counts one more clear),
is a deliberate rerun and mails again.

The price, the residual risk: "handed over, not sent" cannot be resolved by the pipeline. The
message arrived if the try died after the content's last line reached the server (the common
case: the window spans the transfer, the server's answer and one commit), and did not if it died
mid-transfer or just after committing "handed over". The pipeline then sends nothing rather than
risk a second copy, and fails the task for good naming the Message-ID, so an operator looks for it
and clears the task if it never arrived. A warehouse outage between the 250 and recording it
leaves the same state, as does a server whose 250 was lost in the network. And 250 is only the
first server's word: a relay further on may still lose or duplicate the message.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Protocol

import psycopg
from psycopg.pq import TransactionStatus

from include.common.email import EmailDeliveryUnknown, EmailNotSent
from include.common.failures import PermanentFailure
from include.learning_platform.warehouse import sql

log = logging.getLogger(__name__)


class Sender(Protocol):
    """``include.common.email.send_message`` with its connection chosen."""

    def __call__(self, message: EmailMessage, *, before_data: Callable[[], None]) -> None: ...


@dataclass(frozen=True, slots=True)
class RunEmail:
    """Which report email: the day's, of one run, as often as the run was cleared."""

    day: date
    dag_run_id: str
    clear_number: int

    def params(self, **extra: object) -> dict[str, object]:
        return {"day": self.day, "dag_run_id": self.dag_run_id, "clear_number": self.clear_number, **extra}


@dataclass(frozen=True, slots=True)
class Delivery:
    message_id: str
    content_digest: str
    sent_at: datetime
    sent_now: bool  # False: an earlier try of the run had sent it


class DeliveryUnconfirmed(PermanentFailure):
    """A try handed the run's message over and no 250 was recorded: it may or may not have arrived.

    Retrying could mail the report twice: an operator decides (the message says how)."""


class DeliveryTakenOver(RuntimeError):
    """Another try of the same run took the email over before this one handed its message over."""


def send_once(conn: psycopg.Connection, message: EmailMessage, run: RunEmail, *, send: Sender) -> Delivery:
    """Send ``message`` as ``run``'s report email unless a try of the run already did (see above).

    ``conn`` must have no transaction open: each state is committed before the next step. Raises
    :class:`DeliveryUnconfirmed` for a message that may have arrived (retrying cannot tell), lets
    :class:`EmailNotSent` through when nothing was delivered (a retry will send).
    """
    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise ValueError("send_once commits each state on its own: pass a connection outside a transaction")
    message_id = message["Message-ID"]
    if not message_id:
        raise ValueError(f"the message {message['Subject']!r} has no Message-ID to record")
    digest = content_digest(message)
    recipients = _addresses([*message.get_all("To", []), *message.get_all("Cc", [])])

    with conn.transaction():
        row = conn.execute(sql("select_report_email"), run.params()).fetchone()
        if row is not None:
            recorded_id, recorded_digest, recorded_handed_over_at, recorded_sent_at = row
            if recorded_sent_at is not None:
                log.info(
                    "the report email of %s for run %s was sent at %s (Message-ID %s): not sending it again",
                    run.day,
                    run.dag_run_id,
                    recorded_sent_at.isoformat(),
                    recorded_id,
                )
                return Delivery(recorded_id, recorded_digest, recorded_sent_at, sent_now=False)
            if recorded_handed_over_at is not None:
                raise DeliveryUnconfirmed(_unconfirmed(run, recorded_id, recorded_handed_over_at))
        claimed = conn.execute(
            sql("prepare_report_email"),
            run.params(message_id=message_id, content_digest=digest, recipients=recipients),
        ).fetchone()
        if claimed is None:
            raise DeliveryTakenOver(_taken_over(run))

    handed_over_at: datetime | None = None

    def hand_over() -> None:
        nonlocal handed_over_at
        with conn.transaction():
            row = conn.execute(sql("hand_over_report_email"), {"message_id": message_id}).fetchone()
        if row is None:
            raise DeliveryTakenOver(_taken_over(run))
        (handed_over_at,) = row

    try:
        send(message, before_data=hand_over)
    except EmailNotSent:
        if handed_over_at is not None:
            # The server answered the content with a refusal: nothing arrived, a retry may send.
            with conn.transaction():
                conn.execute(sql("release_report_email"), {"message_id": message_id})
        raise
    except EmailDeliveryUnknown as error:
        raise DeliveryUnconfirmed(_unconfirmed(run, message_id, handed_over_at)) from error
    try:
        with conn.transaction():
            (sent_at,) = conn.execute(sql("mark_report_email_sent"), {"message_id": message_id}).fetchone()
    except psycopg.Error:
        # Said here because the retry can only report the message as unconfirmed.
        log.error(
            "the report email of %s (Message-ID %s) WAS accepted by the server, but recording that "
            "failed: a retry will not send it again",
            run.day,
            message_id,
        )
        raise
    return Delivery(message_id, digest, sent_at, sent_now=True)


def content_digest(message: EmailMessage) -> str:
    """sha256 of what the recipients read: subject, recipients and every part's decoded content.

    Headers that differ between two sendings of the same report (Message-ID, Date, MIME
    boundaries) are left out, so two runs that mailed the same report have the same digest.
    """
    digest = hashlib.sha256()
    for name in ("Subject", "To", "Cc"):
        for value in message.get_all(name, []):
            digest.update(f"{name}: {value}\n".encode())
    for part in message.walk():
        if not part.is_multipart():
            digest.update(f"{part.get_content_type()} {part['Content-ID'] or ''}\n".encode())
            digest.update(part.get_payload(decode=True) or b"")
    return digest.hexdigest()


def _unconfirmed(run: RunEmail, message_id: str, handed_over_at: datetime | None) -> str:
    since = f" at {handed_over_at.isoformat()}" if handed_over_at else ""
    return (
        f"The report email of {run.day} for run {run.dag_run_id} (Message-ID {message_id}) went to the "
        f"mail server{since}, but the server's acceptance was never recorded: it may or may not have "
        "arrived, and it is not sent again, to never mail the report twice. Look for that Message-ID in "
        "a recipient's mailbox or the mail server's log; if it never arrived, clear this task (a cleared "
        "run mails its report again)."
    )


def _taken_over(run: RunEmail) -> str:
    return (
        f"another try of run {run.dag_run_id} took over the report email of {run.day}: this try sends "
        "nothing (Airflow had given it up; the other try mails the report)"
    )


def _addresses(values: Sequence[str]) -> list[str]:
    return [address for _, address in getaddresses(list(values)) if address]
