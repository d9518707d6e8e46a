"""A TCP proxy between a worker and PostgreSQL that drops the connection at one exact message.

It reads the frontend/backend protocol (PostgreSQL docs, "Message Formats") from the worker's
side, one message at a time, so a fault strikes at a message, not at a time:

- ``cut_after_commit(n)``: the ``COMMIT`` of the transaction of the worker's ``n``-th batch (the
  one holding the ``n``-th ``COPY pg_temp.batch_sums``) is passed on to PostgreSQL; PostgreSQL's
  reply (the commit is done) is thrown away and both sockets are closed. The worker sees its
  connection lost with the outcome of its COMMIT unknown: the store accepted the batch and
  the worker never heard of it.
- ``cut_mid_copy(n)``: half of the first data message of the ``n``-th batch's COPY is passed on,
  then both sockets are closed: the network dropped in the middle of a batch.

psycopg sends ``COMMIT`` and ``COPY`` as simple Query messages (``Q``), whose text is in the
message; that is how they are found. Each proxy cuts once; every later connection is passed
through untouched (the retry connects through it too). The worker must not ask for TLS
(``sslmode=disable``), or the proxy would see ciphertext.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType
from typing import Self

BATCH_COPY = b"COPY pg_temp.batch_sums"
COMMIT = b"COMMIT"
# Untyped messages a client may send before its StartupMessage (protocol codes, not versions).
_NEGOTIATION_CODES = {80877103, 80877104}  # SSLRequest, GSSENCRequest


class CuttingPostgresProxy:
    """A proxy to PostgreSQL at 127.0.0.1:``upstream_port`` on a free port of 127.0.0.1."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream = ("127.0.0.1", upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._lock = threading.Lock()
        self._rule: tuple[str, int] | None = None
        self._batch_copies = 0
        self.cut = threading.Event()
        self.cut_at: str | None = None  # what was passed on last, in words
        self._threads: list[threading.Thread] = []
        self._closing = False

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    def cut_after_commit(self, batch: int) -> None:
        self._arm("after_commit", batch)

    def cut_mid_copy(self, batch: int) -> None:
        self._arm("mid_copy", batch)

    def _arm(self, rule: str, batch: int) -> None:
        with self._lock:
            self._rule, self._batch_copies = (rule, batch), 0

    def __enter__(self) -> Self:
        self._spawn(self._accept)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing = True
        self._listener.close()

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self._upstream)
            link = _Link(client, server)
            self._spawn(self._client_to_server, link)
            self._spawn(self._server_to_client, link)

    def _client_to_server(self, link: _Link) -> None:
        for message in _messages(link.client):
            kind = message[:1]
            with self._lock:
                rule = self._rule
                query = message[5:].rstrip(b"\x00") if kind == b"Q" else b""
                if query.startswith(BATCH_COPY):
                    self._batch_copies += 1
                armed = rule is not None and self._batch_copies == rule[1]
                if armed and rule[0] == "mid_copy" and kind == b"d":
                    self._rule = None
                    link.send_to_server(message[: len(message) // 2])
                    self._cut(link, f"half of the first COPY data message of batch {rule[1]}")
                    return
                if armed and rule[0] == "after_commit" and query == COMMIT:
                    self._rule = None
                    # Set before the COMMIT goes: its reply must not slip through first.
                    link.swallow_reply = f"the COMMIT of batch {rule[1]}, its reply withheld"
            if not link.send_to_server(message):
                break
        link.close()

    def _server_to_client(self, link: _Link) -> None:
        while True:
            try:
                data = link.server.recv(65536)
            except OSError:
                break
            if not data:
                break
            if link.swallow_reply:
                self._cut(link, link.swallow_reply)
                return
            try:
                link.client.sendall(data)
            except OSError:
                break
        link.close()

    def _cut(self, link: _Link, what: str) -> None:
        self.cut_at = what
        link.close()
        self.cut.set()


class _Link:
    """One worker connection and its connection to PostgreSQL."""

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client, self.server = client, server
        self.swallow_reply: str | None = None

    def send_to_server(self, data: bytes) -> bool:
        try:
            self.server.sendall(data)
        except OSError:
            return False
        return True

    def close(self) -> None:
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def _messages(sock: socket.socket):
    """The client's messages, whole, as sent: the untyped start-up ones, then typed ones."""
    buffer = b""
    typed = False

    def read(n: int) -> bytes | None:
        nonlocal buffer
        while len(buffer) < n:
            try:
                data = sock.recv(65536)
            except OSError:
                return None
            if not data:
                return None
            buffer += data
        message, buffer = buffer[:n], buffer[n:]
        return message

    while True:
        if typed:
            head = read(5)
            if head is None:
                return
            (length,) = struct.unpack("!I", head[1:5])
            body = read(length - 4)
        else:
            head = read(8)
            if head is None:
                return
            length, code = struct.unpack("!II", head)
            body = read(length - 8)
            typed = code not in _NEGOTIATION_CODES
        if body is None:
            return
        yield head + body
