"""The local SMTP sink: every message lands byte for byte as an .eml file; the CLI serves until SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import smtplib
import subprocess
import sys
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from devservices.environment import PROJECT_ROOT
from devservices.smtp_sink import SmtpSink

CHART = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


def report_message(subject: str = "Отчёт за 2026-11-22") -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = "reports@example.org"
    message["To"] = "analyst@example.org"
    message.set_content("Figures\n.a line that starts with a dot\n")
    message.add_alternative('<p>Figures</p><img src="cid:chart@test">', subtype="html")
    message.get_payload()[1].add_related(CHART, maintype="image", subtype="png", cid="<chart@test>")
    return message


def test_a_message_lands_as_an_eml_file_that_parses_back_to_the_same_message(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    with SmtpSink(outbox) as sink, smtplib.SMTP(sink.host, sink.port, timeout=10) as client:
        client.send_message(report_message(), to_addrs=["analyst@example.org", "archive@example.org"])
        [path] = sink.messages()

    assert re.fullmatch(r"\d{8}T\d{6}\.\d{6}Z-0001\.eml", path.name)
    received = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert received["Subject"] == "Отчёт за 2026-11-22"
    assert [part.get_content_type() for part in received.walk()] == [
        "multipart/alternative",
        "text/plain",
        "multipart/related",
        "text/html",
        "image/png",
    ]
    plain = received.get_body(preferencelist=("plain",))
    assert plain is not None
    assert plain.get_content().splitlines() == ["Figures", ".a line that starts with a dot"]
    assert received.get_payload()[1].get_payload()[1].get_content() == CHART


def test_the_file_holds_exactly_the_bytes_the_client_sent(tmp_path: Path) -> None:
    raw = (
        b"Subject: raw\r\nFrom: a@example.org\r\nTo: b@example.org\r\n\r\n"
        b".leading dot, stuffed on the wire\r\n..two dots\r\ntrailing spaces   \r\n\xd0\x96 8-bit\r\n"
    )
    with SmtpSink(tmp_path) as sink, smtplib.SMTP(sink.host, sink.port, timeout=10) as client:
        client.sendmail("a@example.org", ["b@example.org"], raw)
        [path] = sink.messages()

    assert path.read_bytes() == raw


def test_every_message_gets_its_own_file_in_arrival_order_and_no_temporary_file_stays(tmp_path: Path) -> None:
    with SmtpSink(tmp_path) as sink, smtplib.SMTP(sink.host, sink.port, timeout=10) as client:
        for number in range(3):
            client.send_message(report_message(f"message {number}"))
        paths = sink.messages()

    subjects = [BytesParser(policy=policy.default).parsebytes(path.read_bytes())["Subject"] for path in paths]
    assert subjects == ["message 0", "message 1", "message 2"]
    assert sorted(os.listdir(tmp_path)) == [path.name for path in paths]


def test_the_sink_stops_listening_when_the_block_ends(tmp_path: Path) -> None:
    with SmtpSink(tmp_path) as sink:
        port = sink.port

    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP("127.0.0.1", port, timeout=10)
    with pytest.raises(RuntimeError, match="not running"):
        _ = sink.port


def test_the_command_prints_where_it_listens_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    process = subprocess.Popen(
        [sys.executable, "-m", "devservices.smtp_sink", "--port", "0", "--outbox", str(outbox)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"listening on 127\.0\.0\.1:(\d+), saving messages to (.+)$", line)
        assert found, f"unexpected first line {line!r}"
        with smtplib.SMTP("127.0.0.1", int(found.group(1)), timeout=10) as client:
            client.send_message(report_message())
    finally:
        process.send_signal(signal.SIGTERM)
        _, log = process.communicate(timeout=20)

    assert process.returncode == 0
    assert found.group(2) == str(outbox)
    [path] = outbox.glob("*.eml")
    assert f"received {path.name} from reports@example.org for analyst@example.org" in log
    assert "'Отчёт за 2026-11-22'" in log
    assert len(log.splitlines()) == 2, "one line per message, one when stopping"
