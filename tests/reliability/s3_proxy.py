"""An HTTP proxy in front of the S3 test server that breaks downloads as networks and S3 do.

:class:`FaultyS3Proxy` passes every request to the server as it came and its answer back, except
the GETs of one object, on which it plays a queue of faults: a body cut mid-way (status and
headers whole, ``Content-Length`` the full body's, then half the body and the connection closed,
as when a network drops a download) or stalled (held until the test releases it: a reader held
mid-file for as long as the test needs, whatever the machine's speed), a connection reset mid-body, a 500
InternalError, a 503 SlowDown or a 403 AccessDenied (S3's own XML error bodies). It records
every GET of that object with its ``Range`` and how many body bytes went back.
"""

from __future__ import annotations

import enum
import http.client
import socket
import struct
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self
from urllib.parse import unquote, urlsplit

# Per hop: never passed on (RFC 9110 §7.6.1); the proxy sets its own Content-Length.
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}


class Fault(enum.Enum):
    CUT = "the body stops half-way and the connection closes"
    RESET = "half the body, then a TCP reset"
    STALL = "half the body, then silence until released (then the connection closes) or the proxy stops"
    INTERNAL_ERROR = "500 InternalError"
    SLOW_DOWN = "503 SlowDown"
    ACCESS_DENIED = "403 AccessDenied"


_ERRORS = {
    Fault.INTERNAL_ERROR: (500, "InternalError", "We encountered an internal error. Please try again."),
    Fault.SLOW_DOWN: (503, "SlowDown", "Please reduce your request rate."),
    Fault.ACCESS_DENIED: (403, "AccessDenied", "Access Denied"),
}


@dataclass(frozen=True)
class Get:
    """One GET of the faulty object as the proxy answered it."""

    range: str | None
    if_match: str | None
    status: int
    sent: int  # body bytes that went back
    fault: Fault | None

    @property
    def start(self) -> int:
        """The first byte asked for (0 without a Range)."""
        return int(self.range.removeprefix("bytes=").split("-")[0]) if self.range else 0


class FaultyS3Proxy:
    """A proxy to ``upstream`` (http://host:port) that plays queued faults on one object's GETs.

    :meth:`inject` queues faults for the GETs of ``bucket``/``key``; each GET takes the next one
    (``forever=True``: the last is played on every GET from then on). Everything else, HEADs
    included, passes through whole.
    """

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._lock = threading.Lock()
        self._path: str | None = None
        self._faults: deque[Fault] = deque()
        self._forever: Fault | None = None
        self.gets: list[Get] = []
        self._stopping = threading.Event()  # releases the stalled answers for good
        self._released = threading.Event()  # releases the answers stalled so far (see release())
        self._stalled = threading.Condition(self._lock)
        self.stalled = 0  # answers that have sent half their body and wait to be released
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        # A short poll: stopping the proxy after each test should not cost half a second.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def inject(self, bucket: str, key: str, *faults: Fault, forever: bool = False) -> None:
        with self._lock:
            self._path = f"/{bucket}/{key}"
            self._faults = deque(faults)
            self._forever = faults[-1] if forever and faults else None

    def wait_until_stalled(self, count: int = 1, timeout_s: float = 60) -> None:
        """Wait until ``count`` STALL answers hold their readers (half the body sent, flushed)."""
        with self._stalled:
            if not self._stalled.wait_for(lambda: self.stalled >= count, timeout=timeout_s):
                raise TimeoutError(f"{self.stalled} of {count} stalled answers after {timeout_s:.0f} s")

    def release(self) -> None:
        """End every answer stalled so far: each closes its connection, a cut body to its reader.
        A STALL played after this holds its reader again."""
        with self._lock:
            released, self._released = self._released, threading.Event()
            self.stalled = 0
        released.set()

    def _next_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            if method != "GET" or unquote(urlsplit(path).path) != self._path:
                return None
            if self._faults:
                return self._faults.popleft()
            return self._forever

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stopping.set()
        self._released.set()
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._forward()

            do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                fault = proxy._next_fault(self.command, self.path)
                if fault in _ERRORS:
                    self._error(fault)
                    return
                upstream = http.client.HTTPConnection(*proxy._upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
                if body is not None:
                    headers["Content-Length"] = str(len(body))
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                upstream.close()
                if answer.status not in (200, 206):
                    fault = None
                sent = len(data) // 2 if fault else len(data)
                self._record(answer.status, 0 if self.command == "HEAD" else sent, fault)
                self.send_response(answer.status, answer.reason)
                for name, value in answer.getheaders():
                    if name.lower() not in HOP_HEADERS:
                        self.send_header(name, value)
                # A HEAD's length is the object's, which its empty body is not.
                size = answer.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", size or str(len(data)))
                if fault:
                    self.send_header("Connection", "close")
                self.end_headers()
                if self.command == "HEAD":
                    return
                self.wfile.write(data[:sent])
                self.wfile.flush()
                if fault is Fault.STALL:
                    # Headers and half the body, then nothing until released (or the client's read
                    # timeout gives up first).
                    with proxy._stalled:
                        released = proxy._released
                        proxy.stalled += 1
                        proxy._stalled.notify_all()
                    released.wait()
                if fault is Fault.RESET:
                    # Linger 0: the close sends RST, not FIN, as a dropped NAT entry or a crashed peer.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                if fault:
                    self.close_connection = True

            def _error(self, fault: Fault) -> None:
                status, code, message = _ERRORS[fault]
                body = (
                    '<?xml version="1.0" encoding="UTF-8"?>\n'
                    f"<Error><Code>{code}</Code><Message>{message}</Message>"
                    "<RequestId>faulty-proxy</RequestId></Error>"
                ).encode()
                self._record(status, 0, fault)
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _record(self, status: int, sent: int, fault: Fault | None) -> None:
                if self.command != "GET" or unquote(urlsplit(self.path).path) != proxy._path:
                    return
                get = Get(self.headers.get("Range"), self.headers.get("If-Match"), status, sent, fault)
                with proxy._lock:
                    proxy.gets.append(get)

            def log_message(self, format: str, *args: object) -> None:
                pass  # one line per request would drown the test's output

        return Handler
