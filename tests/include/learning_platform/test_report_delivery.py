"""One report email per run: each state a try can leave, and what the next try then does.

A real PostgreSQL holds the ledger; the messages go through ``send_message`` and an Airflow SMTP
connection to real aiosmtpd servers: the outbox sink, and handlers that refuse the content or
hang up before answering it.
"""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.message import EmailMessage
from functools import partial
from pathlib import Path

import psycopg
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from devservices.postgres import free_port
from devservices.smtp_sink import SERVER_NAME, AnyPortController, OutboxHandler, SmtpSink
from include.common.email import EmailNotSent, send_message
from include.learning_platform.publication import Destination, Publication
from include.learning_platform.report_delivery import (
    DeliveryTakenOver,
    DeliveryUnconfirmed,
    RunEmail,
    content_digest,
    send_once,
)
from include.learning_platform.report_email import build_report_email
from include.learning_platform.texts import ENGLISH
from tests.include.learning_platform.reports import DAY, build_report, figures

RUN = RunEmail(DAY, "scheduled__2026-11-22T00:00:00+00:00", clear_number=0)
RECIPIENTS = ("analyst@uni.test", "head@uni.test")
CONN_ID = "smtp_delivery"
CHART = b"\x89PNG\r\n\x1a\n" + b"a chart"
SHEETS = Publication(Destination.SHEETS, "https://docs.google.com/spreadsheets/d/1AbC/edit")


def report_email(users: int = 40) -> EmailMessage:
    """The day's report mail, built afresh as each try builds it (a new Message-ID every time)."""
    report = build_report(day_figures=figures(users=users))
    return build_report_email(
        report, ENGLISH, publication=SHEETS, sender="", recipients=RECIPIENTS, chart_png=CHART
    )


class RefusingHandler(OutboxHandler):
    """Refuses every message's content with an answer of its own: nothing is delivered."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "554 5.6.0 Message refused by policy"


class HangingUpHandler(OutboxHandler):
    """Keeps the message, then hangs up before answering: the client cannot know it arrived."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        server.transport.abort()
        return answer


@pytest.fixture
def smtp_at(airflow_home: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """Point the Airflow connection CONN_ID at a port."""

    def point(port: int) -> None:
        extra = {"disable_ssl": True, "disable_tls": True, "from_email": "airflow@uni.test", "timeout": 5}
        connection = {"conn_type": "smtp", "host": "127.0.0.1", "port": port, "extra": extra}
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(connection))

    return point


@pytest.fixture
def sink(tmp_path: Path, smtp_at: Callable[[int], None]) -> Iterator[SmtpSink]:
    with SmtpSink(tmp_path / "outbox") as server:
        smtp_at(server.port)
        yield server


@pytest.fixture
def server_with(
    tmp_path: Path, smtp_at: Callable[[int], None]
) -> Iterator[Callable[[type[OutboxHandler]], None]]:
    """Start an SMTP server with a handler of the test's, saving into the same outbox as ``sink``."""
    controllers: list[AnyPortController] = []

    def start(handler: type[OutboxHandler]) -> None:
        (tmp_path / "outbox").mkdir(exist_ok=True)
        controller = AnyPortController(
            handler(tmp_path / "outbox"), hostname="127.0.0.1", port=0, server_hostname=SERVER_NAME
        )
        controller.start()
        controllers.append(controller)
        smtp_at(controller.port)

    yield start
    for controller in controllers:
        controller.stop()


def send(conn: psycopg.Connection, message: EmailMessage, run: RunEmail = RUN):
    return send_once(conn, message, run, send=partial(send_message, conn_id=CONN_ID))


def received(outbox: Path) -> list[EmailMessage]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(outbox.glob("*.eml"))
    ]


def ledger(conn: psycopg.Connection) -> list[tuple]:
    with conn.transaction():  # of its own: send_once needs the connection idle afterwards
        return conn.execute(
            "SELECT report_date, dag_run_id, clear_number, message_id, handed_over_at IS NOT NULL, "
            "sent_at IS NOT NULL FROM learning_platform.report_emails ORDER BY prepared_at"
        ).fetchall()


# --- runs and retries ----------------------------------------------------------------------------


def test_the_first_try_sends_and_records_what_it_sent(warehouse, sink) -> None:
    message = report_email()

    delivery = send(warehouse, message)

    [arrived] = received(sink.outbox)
    assert arrived["Message-ID"] == message["Message-ID"] == delivery.message_id
    assert delivery.sent_now
    assert delivery.content_digest == content_digest(message)
    recorded = warehouse.execute(
        "SELECT content_digest, recipients, prepared_at <= handed_over_at AND handed_over_at <= sent_at "
        "FROM learning_platform.report_emails"
    ).fetchone()
    assert recorded == (content_digest(message), list(RECIPIENTS), True)


def test_a_retry_after_the_message_was_sent_sends_nothing(warehouse, sink) -> None:
    first = send(warehouse, report_email())

    again = send(warehouse, report_email())

    assert len(received(sink.outbox)) == 1
    assert not again.sent_now
    assert (again.message_id, again.sent_at) == (first.message_id, first.sent_at)


def test_a_new_run_of_the_date_and_a_cleared_run_mail_again(warehouse, sink) -> None:
    send(warehouse, report_email())

    send(warehouse, report_email(), RunEmail(DAY, "manual__2026-12-06T03:51:51+00:00", 0))
    send(warehouse, report_email(), RunEmail(DAY, RUN.dag_run_id, clear_number=1))
    send(warehouse, report_email(), RunEmail(DAY, RUN.dag_run_id, clear_number=1))  # its retry

    assert len(received(sink.outbox)) == 3
    assert [row[1:3] for row in ledger(warehouse)] == [
        (RUN.dag_run_id, 0),
        ("manual__2026-12-06T03:51:51+00:00", 0),
        (RUN.dag_run_id, 1),
    ]


def test_the_same_run_id_for_another_day_is_another_email(warehouse, sink) -> None:
    send(warehouse, report_email())
    send(warehouse, report_email(), RunEmail(DAY + timedelta(days=1), RUN.dag_run_id, 0))

    assert len(received(sink.outbox)) == 2


# --- crash windows -------------------------------------------------------------------------------


def test_a_try_that_never_reached_the_server_leaves_the_retry_free_to_send(
    warehouse, tmp_path, smtp_at
) -> None:
    smtp_at(free_port())  # nothing listens
    with pytest.raises(EmailNotSent):
        send(warehouse, report_email())
    [(_, _, _, first_id, handed_over, sent)] = ledger(warehouse)
    assert (handed_over, sent) == (False, False)

    with SmtpSink(tmp_path / "outbox") as sink:
        smtp_at(sink.port)
        retry = report_email()
        send(warehouse, retry)

    [arrived] = received(sink.outbox)
    assert arrived["Message-ID"] == retry["Message-ID"] != first_id
    assert [row[3:] for row in ledger(warehouse)] == [(retry["Message-ID"], True, True)]


def test_content_the_server_refused_is_released_for_the_retry(warehouse, tmp_path, server_with) -> None:
    server_with(RefusingHandler)
    with pytest.raises(EmailNotSent, match="554"):
        send(warehouse, report_email())
    assert [row[4:] for row in ledger(warehouse)] == [(False, False)]

    server_with(OutboxHandler)
    send(warehouse, report_email())

    assert len(received(tmp_path / "outbox")) == 1


def test_a_message_whose_answer_was_lost_is_never_sent_again(warehouse, tmp_path, server_with) -> None:
    server_with(HangingUpHandler)
    message = report_email()

    with pytest.raises(DeliveryUnconfirmed) as first:
        send(warehouse, message)
    server_with(OutboxHandler)
    with pytest.raises(DeliveryUnconfirmed) as retry:
        send(warehouse, report_email())

    [arrived] = received(tmp_path / "outbox")
    assert arrived["Message-ID"] == message["Message-ID"]
    for error in (first.value, retry.value):
        assert message["Message-ID"] in str(error)
        assert "clear this task" in str(error)
    assert [row[3:] for row in ledger(warehouse)] == [(message["Message-ID"], True, False)]


def test_of_two_live_tries_of_a_run_only_the_one_holding_the_row_sends(
    warehouse, warehouse_conninfo, sink
) -> None:
    """A zombie (a try Airflow gave up on, still running) and its retry: the retry takes the row
    over after the zombie prepared; the zombie then finds it gone when about to hand over."""
    zombie, retry = report_email(), report_email()

    def zombie_sender(message: EmailMessage, *, before_data: Callable[[], None]) -> None:
        with psycopg.connect(warehouse_conninfo) as other:
            send(other, retry)
        send_message(message, conn_id=CONN_ID, before_data=before_data)

    with pytest.raises(DeliveryTakenOver, match="another try"):
        send_once(warehouse, zombie, RUN, send=zombie_sender)

    [arrived] = received(sink.outbox)
    assert arrived["Message-ID"] == retry["Message-ID"]
    assert [row[3:] for row in ledger(warehouse)] == [(retry["Message-ID"], True, True)]


# --- what is recorded ----------------------------------------------------------------------------


def test_the_digest_names_the_content_not_the_sending() -> None:
    one, two, other = report_email(), report_email(), report_email(users=41)

    assert one["Message-ID"] != two["Message-ID"]
    assert content_digest(one) == content_digest(two)
    assert content_digest(one) != content_digest(other)


def test_a_connection_inside_a_transaction_is_refused(warehouse, sink) -> None:
    warehouse.execute("SELECT 1")

    with pytest.raises(ValueError, match="outside a transaction"):
        send(warehouse, report_email())
    assert received(sink.outbox) == []
