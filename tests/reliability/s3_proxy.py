"""An HTTP proxy in front of the S3 test server that cuts one object's body once, mid-way.

Every request is passed to the server as it came and its answer passed back, except the first
``GET`` of the armed key after :meth:`BodyCuttingProxy.arm`: its status and headers go back whole
(``Content-Length`` the full body's), then half the body, then the connection is closed, as when
a network drops a download. The client sees a short body, as it would from AWS.
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self
from urllib.parse import unquote, urlsplit

# Per hop: never passed on (RFC 9110 §7.6.1); the proxy sets its own Content-Length.
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}


class BodyCuttingProxy:
    """A proxy to ``upstream`` (http://host:port) on a free port of 127.0.0.1."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._lock = threading.Lock()
        self._armed: str | None = None
        self.gets: list[tuple[str, str | None]] = []  # every GET passed on: (path, Range)
        self.cuts: list[int] = []  # the GETs cut, by their index in gets
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def arm(self, bucket: str, key: str) -> None:
        """Cut the body of the next GET of ``bucket``/``key`` (once)."""
        with self._lock:
            self._armed = f"/{bucket}/{key}"

    def _take_cut(self, method: str, path: str) -> bool:
        with self._lock:
            if method == "GET" and self._armed is not None and unquote(urlsplit(path).path) == self._armed:
                self._armed = None
                return True
            return False

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
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
                upstream = http.client.HTTPConnection(*proxy._upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
                if body is not None:
                    headers["Content-Length"] = str(len(body))
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                upstream.close()
                cut = answer.status in (200, 206) and proxy._take_cut(self.command, self.path)
                if self.command == "GET":
                    with proxy._lock:
                        proxy.gets.append((unquote(urlsplit(self.path).path), self.headers.get("Range")))
                        if cut:
                            proxy.cuts.append(len(proxy.gets) - 1)
                self.send_response(answer.status, answer.reason)
                for name, value in answer.getheaders():
                    if name.lower() not in HOP_HEADERS:
                        self.send_header(name, value)
                # A HEAD's length is the object's, which its empty body is not.
                size = answer.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", size or str(len(data)))
                if cut:
                    self.send_header("Connection", "close")
                self.end_headers()
                if self.command == "HEAD":
                    return
                if cut:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass  # one line per request would drown the test's output

        return Handler
