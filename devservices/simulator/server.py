"""The simulator over HTTP: the statistics API, its faults, and the control endpoints.

``GET /api/statistics`` follows ``shared/LEARNING_PLATFORM_API.md``: 401 without
credentials, 403 with wrong ones (JSON error bodies, never a list), 400 for a bad window,
else 200 with every record whose ``created_at`` lies in the closed window ``[start, end]``.
Faults apply to this endpoint only, and are decided before authentication, as a proxy in
front of the real service would inject them.

Control endpoints (not part of the real API):

``GET  /_simulator/health``  ``{"status": "ok"}``
``GET  /_simulator/config``  the runtime settings (see :mod:`.config`; credentials are never shown)
``PUT  /_simulator/config``  a partial JSON object of runtime settings; answers the new settings
``POST /_simulator/reset``   back to the start-up settings, counters zeroed; answers the settings
``GET  /_simulator/stats``   API requests so far: ``{"requests": {"total", "by_status",
                             "by_outcome"}, "records_served", "faults": [rule + "times_left",
                             "fired"]}``. A request is counted as soon as its answer is decided,
                             before any latency or stall, so a client that gave up is counted too.

Outcomes: ``ok``, ``unauthorized`` (401), ``forbidden`` (403), ``bad_request`` (400),
``error`` and ``rate_limit`` (injected statuses), ``cut_body`` and ``malformed_json`` (200s
whose body the client cannot use). Secrets never reach the log: the query string is never
logged, only the window asked for.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import re
import socketserver
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.client import responses
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devservices.http_bodies import read_request_body
from devservices.simulator.config import ConfigError, SimulatorConfig
from devservices.simulator.data import render_records
from devservices.simulator.faults import FaultPlan, FaultRule, cut_short, malform

log = logging.getLogger(__name__)

API_PATH = "/api/statistics"
HEALTH_PATH = "/_simulator/health"
API_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S")
MAX_CONTROL_BODY = 1 << 20
# Idle keep-alive connections are dropped after this, so their threads do not linger.
IDLE_TIMEOUT_S = 60

_SECRET_PARAMETER = re.compile(r"((?:client|client_key)=)[^&\s'\"]*")


class SimulatorState:
    """What the control endpoints change: the settings in force, their fault plan, the counters."""

    def __init__(self, startup: SimulatorConfig) -> None:
        self._startup = startup
        self._lock = threading.Lock()
        self.reset()

    @property
    def config(self) -> SimulatorConfig:
        return self._config

    @property
    def faults(self) -> FaultPlan:
        return self._faults

    def update(self, changes: Mapping[str, Any]) -> SimulatorConfig:
        """Apply runtime setting changes; raises :class:`ConfigError` and changes nothing if invalid."""
        with self._lock:
            self._config = self._config.updated(changes)
            if "faults" in changes:
                self._faults = FaultPlan(self._config.faults, self._config.seed)
            return self._config

    def reset(self) -> SimulatorConfig:
        with self._lock:
            self._config = self._startup
            self._faults = FaultPlan(self._startup.faults, self._startup.seed)
            self._total = 0
            self._by_status: Counter[str] = Counter()
            self._by_outcome: Counter[str] = Counter()
            self._records_served = 0
            return self._config

    def count(self, status: int, outcome: str, records: int) -> None:
        with self._lock:
            self._total += 1
            self._by_status[str(status)] += 1
            self._by_outcome[outcome] += 1
            self._records_served += records

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": {
                    "total": self._total,
                    "by_status": dict(sorted(self._by_status.items())),
                    "by_outcome": dict(sorted(self._by_outcome.items())),
                },
                "records_served": self._records_served,
                "faults": self._faults.snapshot(),
            }


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes
    outcome: str
    headers: dict[str, str] = field(default_factory=dict)
    records: int = 0
    # Set for a body cut short: the length announced, longer than the body sent.
    announced_length: int | None = None
    # What the request log line adds after the path.
    note: str = ""


def _json_answer(status: int, payload: object, outcome: str = "ok", **headers: str) -> _Answer:
    return _Answer(status, json.dumps(payload).encode(), outcome, headers)


def _error(status: int, outcome: str, detail: str, **headers: str) -> _Answer:
    payload = {"error": responses.get(status, "Error"), "detail": detail}
    return _json_answer(status, payload, outcome, **headers)


def _statistics_answer(
    config: SimulatorConfig, fault: FaultRule | None, parameters: Mapping[str, list[str]]
) -> _Answer:
    """The answer to ``GET /api/statistics`` with the query ``parameters``, ``fault`` injected."""
    if fault is not None and fault.kind == "error":
        return _error(fault.status, "error", "injected fault")
    if fault is not None and fault.kind == "rate_limit":
        retry_after = {"Retry-After": f"{fault.retry_after:g}"}
        return _error(429, "rate_limit", "injected fault", **retry_after)

    client, client_key = _first(parameters, "client"), _first(parameters, "client_key")
    if not client or not client_key:
        return _error(401, "unauthorized", "client and client_key are required")
    # Both compared in constant time, whichever is wrong: the answer must not tell.
    if not (_same(client, config.client) & _same(client_key, config.client_key)):
        return _error(403, "forbidden", "unknown client or wrong client_key")
    try:
        start, end = _api_time(parameters, "start"), _api_time(parameters, "end")
        body, records = render_records(config, start, end)
    except ValueError as error:
        return _error(400, "bad_request", str(error))

    if fault is not None and fault.kind == "cut_body":
        return _Answer(
            200, cut_short(body, fault.fraction), "cut_body", records=records, announced_length=len(body)
        )
    if fault is not None and fault.kind == "malformed_json":
        return _Answer(200, malform(body), "malformed_json", records=records)
    return _Answer(200, body, "ok", records=records)


def _first(parameters: Mapping[str, list[str]], name: str) -> str | None:
    values = parameters.get(name)
    return values[0] if values else None


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _api_time(parameters: Mapping[str, list[str]], name: str) -> datetime:
    value = _first(parameters, name)
    if value is None:
        raise ValueError(f"{name} is required")
    for layout in API_TIME_FORMATS:
        try:
            return datetime.strptime(value, layout).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValueError(f"{name} must be YYYY-MM-DD HH:MM:SS[.ffffff] (UTC)")


class SimulatorHTTPServer(ThreadingHTTPServer):
    """A threaded HTTP server holding the simulator's state."""

    # Request threads must never keep the process alive (stalled or idle keep-alive ones).
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], state: SimulatorState) -> None:
        self.state = state
        # Set on shutdown: cuts injected stalls and latency short.
        self.stopping = threading.Event()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS round-trip that can take
        # seconds on a sandboxed machine; the name is only used in CGI variables.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        # socketserver calls this from its ``except`` block: the error is the current exception.
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            # Clients that give up (timeouts, cut bodies) are the point of a fault simulator.
            log.debug("connection from %s ended by the client: %r", client_address[0], error)
        else:
            log.error("request from %s failed", client_address[0], exc_info=error)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections (requests.Session)
    server_version = "LearningPlatformSimulator/1.0"
    timeout = IDLE_TIMEOUT_S
    # Headers and body leave in two writes: with Nagle's algorithm, the second waits for the
    # client's delayed ACK of the first, 40 ms per keep-alive request.
    disable_nagle_algorithm = True
    server: SimulatorHTTPServer

    def do_GET(self) -> None:
        self._route("GET")

    def do_PUT(self) -> None:
        self._route("PUT")

    def do_POST(self) -> None:
        self._route("POST")

    def _route(self, method: str) -> None:
        received = time.monotonic()
        url = urlsplit(self.path)
        body = read_request_body(self, MAX_CONTROL_BODY)
        handlers = self._routes().get(url.path)
        if body is None:
            answer = _error(413, "too_large", f"bodies are limited to {MAX_CONTROL_BODY} bytes")
        elif handlers is None:
            answer = _error(404, "not_found", f"no such path: {url.path}")
        elif method not in handlers:
            allow = ", ".join(handlers)
            answer = _error(405, "method_not_allowed", f"use {allow}", Allow=allow)
        else:
            answer = handlers[method](url.query, body)
        self._reply(answer)
        # Health checks are polled: logging them would bury the API requests.
        level = logging.DEBUG if url.path == HEALTH_PATH else logging.INFO
        elapsed = time.monotonic() - received
        log.log(
            level,
            "%s %s%s -> %d %s (%.3f s)",
            method,
            url.path,
            answer.note,
            answer.status,
            answer.outcome,
            elapsed,
        )

    def _routes(self) -> dict[str, dict[str, Callable[[str, bytes], _Answer]]]:
        state = self.server.state
        return {
            API_PATH: {"GET": self._statistics},
            HEALTH_PATH: {"GET": lambda *_: _json_answer(200, {"status": "ok"})},
            "/_simulator/config": {
                "GET": lambda *_: _json_answer(200, state.config.to_json()),
                "PUT": self._put_config,
            },
            "/_simulator/reset": {"POST": lambda *_: _json_answer(200, state.reset().to_json())},
            "/_simulator/stats": {"GET": lambda *_: _json_answer(200, state.stats())},
        }

    def _statistics(self, query: str, body: bytes) -> _Answer:
        parameters = parse_qs(query, keep_blank_values=True)
        state = self.server.state
        config = state.config
        fault = state.faults.draw()
        answer = _statistics_answer(config, fault, parameters)
        state.count(answer.status, answer.outcome, answer.records)
        delay_s = config.latency_ms / 1000 + (fault.seconds if fault and fault.kind == "stall" else 0)
        if delay_s:
            self.server.stopping.wait(delay_s)
        # The window only: the query string holds the credentials.
        note = (
            f" start={_first(parameters, 'start')} end={_first(parameters, 'end')}, {answer.records} records"
        )
        return dataclasses.replace(answer, note=note)

    def _put_config(self, query: str, body: bytes) -> _Answer:
        try:
            changes = json.loads(body)
        except ValueError:
            changes = None
        if not isinstance(changes, dict):
            return _error(400, "bad_request", "the body must be a JSON object")
        try:
            config = self.server.state.update(changes)
        except ConfigError as error:
            return _error(400, "bad_request", str(error))
        return _json_answer(200, config.to_json())

    def _reply(self, answer: _Answer) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        for name, value in answer.headers.items():
            self.send_header(name, value)
        length = len(answer.body) if answer.announced_length is None else answer.announced_length
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(answer.body)
        if answer.announced_length is not None:
            self.close_connection = True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silenced: the base class would log the request line, credentials included."""

    def log_message(self, format: str, *args: Any) -> None:
        # Only protocol events get here: bad request lines, unsupported methods, idle timeouts.
        log.info("%s: %s", self.address_string(), _SECRET_PARAMETER.sub(r"\1***", format % args))


class SimulatorServer:
    """The simulator in a background thread, for tests and scripts::

        with SimulatorServer(SimulatorConfig(records_per_day=1000)) as simulator:
            simulator.set_faults([{"kind": "error", "status": 503, "times": 2}])
            requests.get(f"{simulator.base_url}/api/statistics", params=...)

    The socket is bound on construction (``port=0`` picks a free port); :meth:`stop` or
    leaving the ``with`` block closes it.
    """

    def __init__(
        self, config: SimulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._state = SimulatorState(config or SimulatorConfig())
        self._httpd = SimulatorHTTPServer((host, port), self._state)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def config(self) -> SimulatorConfig:
        """The settings in force now (pass it to ``generate_records`` to predict answers)."""
        return self._state.config

    def start(self) -> SimulatorServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.1},  # how long stop() may wait for the loop to notice
                name=f"simulator-{self.base_url}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; cuts injected stalls short. Idempotent."""
        self._httpd.stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def configure(self, **changes: Any) -> SimulatorConfig:
        """Change runtime settings, as ``PUT /_simulator/config`` does; returns the new settings."""
        return self._state.update(changes)

    def set_faults(self, rules: Iterable[FaultRule | Mapping[str, Any]]) -> SimulatorConfig:
        """Replace the fault rules (``[]`` clears them), re-arming their counts."""
        return self._state.update({"faults": list(rules)})

    def reset(self) -> SimulatorConfig:
        """Back to the start-up settings, counters zeroed."""
        return self._state.reset()

    def stats(self) -> dict[str, Any]:
        """The same document as ``GET /_simulator/stats``."""
        return self._state.stats()
