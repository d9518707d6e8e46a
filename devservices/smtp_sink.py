"""A local SMTP server that delivers nothing: it keeps every message it receives as an ``.eml`` file.

Used by ``make run`` / ``make airflow`` so that the report email can be opened in any mail
program without a real mail server. Each message is written byte for byte as the client sent
it (after SMTP's dot-unstuffing) to ``<outbox>/<UTC timestamp>-<counter>.eml``, through a
temporary file and a rename, so a reader never sees half a message. No TLS, no login: point
an Airflow SMTP connection at it with extras ``{"disable_ssl": true, "disable_tls": true}``.

Command line (until SIGTERM or Ctrl-C; the listening line goes to stdout, logs to stderr)::

    python -m devservices.smtp_sink --host 127.0.0.1 --port 8025 --outbox .local/outbox
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import signal
import tempfile
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path
from types import TracebackType
from typing import Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from devservices.environment import PROJECT_ROOT

# Not __name__: that is "__main__" when run with -m.
log = logging.getLogger("devservices.smtp_sink")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8025
DEFAULT_OUTBOX = PROJECT_ROOT / ".local" / "outbox"
# The name the server greets with; the default (the machine's FQDN) can mean a slow DNS lookup.
SERVER_NAME = "smtp-sink.localhost"


class AnyPortController(Controller):
    """aiosmtpd's threaded ``Controller``, which also works with port 0 (any free port).

    The stock controller checks that its server answers by connecting to ``self.port``, which is
    still 0 then; this one first learns the port the operating system chose.
    """

    def _trigger_server(self) -> None:
        if self.port == 0 and self.server is not None:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class OutboxHandler:
    """An aiosmtpd handler that saves every message into ``outbox`` and accepts it."""

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox
        self._counter = itertools.count(1)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        path = self.save(content)
        subject = BytesHeaderParser(policy=policy.default).parsebytes(content)["Subject"]
        log.info(
            "received %s from %s for %s: %r",
            path.name,
            envelope.mail_from,
            ", ".join(envelope.rcpt_tos),
            str(subject) if subject is not None else None,
        )
        return "250 OK: kept in the outbox"

    def save(self, content: bytes) -> Path:
        """Write ``content`` to a new ``.eml`` file atomically; returns its path."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        path = self.outbox / f"{stamp}-{next(self._counter):04d}.eml"
        # A dot file: readers listing *.eml never pick up a message being written.
        with tempfile.NamedTemporaryFile(dir=self.outbox, prefix=".", suffix=".tmp", delete=False) as tmp:
            tmp.write(content)
        os.chmod(tmp.name, 0o644)  # a message is for reading by any local mail program
        os.replace(tmp.name, path)
        return path


class SmtpSink:
    """The sink as a context manager: ``with SmtpSink(outbox) as sink: ... sink.port ...``.

    ``port=0`` takes any free port; ``.port`` is the real one once started.
    """

    def __init__(self, outbox: Path, host: str = DEFAULT_HOST, port: int = 0) -> None:
        self.outbox = Path(outbox)
        self.host = host
        self._requested_port = port
        self._controller: AnyPortController | None = None

    @property
    def requested_port(self) -> int:
        """The port asked for (0: any free one); ``port`` is the one listened on."""
        return self._requested_port

    @property
    def port(self) -> int:
        if self._controller is None:
            raise RuntimeError("the SMTP sink is not running: start it first")
        return self._controller.port

    def messages(self) -> list[Path]:
        """The messages received so far (and before), oldest first."""
        return sorted(self.outbox.glob("*.eml"))

    def start(self) -> None:
        if self._controller is not None:
            raise RuntimeError("the SMTP sink is already running")
        self.outbox.mkdir(parents=True, exist_ok=True)
        # aiosmtpd logs every SMTP command at INFO; one line per message (ours) is enough.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        controller = AnyPortController(
            OutboxHandler(self.outbox),
            hostname=self.host,
            port=self._requested_port,
            server_hostname=SERVER_NAME,
            enable_SMTPUTF8=True,
        )
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # aiosmtpd logs every connection and command at INFO; one line per message is ours.
    logging.getLogger("mail.log").setLevel(max(logging.WARNING, logging.getLevelName(args.log_level)))

    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        sink = SmtpSink(args.outbox, host=args.host, port=args.port)
        sink.start()
    except OSError as error:
        log.error("cannot listen on %s:%s: %s", args.host, args.port, error)
        return 1
    try:
        print(f"SMTP sink listening on {sink.host}:{sink.port}, saving messages to {sink.outbox}", flush=True)
        stopping.wait()
        log.info("stopping")
    finally:
        sink.stop()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devservices.smtp_sink",
        description="A local SMTP server that saves every message it receives as an .eml file.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (%(default)s)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port, 0 for any free one (%(default)s)"
    )
    parser.add_argument(
        "--outbox", type=Path, default=DEFAULT_OUTBOX, help="directory of the .eml files (%(default)s)"
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
