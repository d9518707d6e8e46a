"""A local stand-in for the server ``user_profiles_relay`` delivers profiles to, faults included.

A real HTTP server (the standard library's ``ThreadingHTTPServer``) that keeps every profile it
accepted in a SQLite file, so what it acknowledged survives its own restarts, as a real
service's database would. Each profile comes with an idempotency key; a key seen before is
answered ``duplicate`` and not stored again (its ``duplicate_posts`` count goes up), which is
what lets a sender resend a batch whose acknowledgement it never got.

Contract::

    POST /profiles  {"profiles": [{"key": "<idempotency key>", "profile": {...}}, ...]}
                    -> 200 {"results": [{"key": ..., "status": "accepted" | "duplicate"}]}
                       (same order; a batch is stored in one transaction)
                    -> 400 {"error": ..., "detail": <what is wrong>} for a malformed body
                    -> 401 without ``Authorization: Bearer <token>`` when a token is configured
    GET  /health    -> 200 {"status": "ok"} (never needs the token)
    GET  /accepted  -> 200 {"count": n, "keys": [...in acceptance order], "duplicate_posts": n}
    GET  /control   -> the fault armed now
    POST /control   {"mode": "http_500" | "timeout" | "drop_after_accept", "times": N}
                    {"mode": "timeout", "times": N, "seconds": S}   (hold S s, default 30)
                    {"mode": "down", "seconds": S}
    DELETE /control -> faults cleared (and the server is back up if it was down)

Faults apply to ``POST /profiles`` only, after authentication and validation:

- ``http_500``: the next N batches get a 500 and are not stored;
- ``timeout``: the next N batches are held, unanswered and unstored, for longer than the
  sender's read timeout, then the connection is closed;
- ``drop_after_accept``: the next N batches are stored, then the connection is closed without
  an answer: the sender cannot tell, resends, and gets ``duplicate`` for each profile;
- ``down``: the listening socket is really closed (and open connections cut) for S seconds:
  connections are refused, then the server listens again on the same port.

Python API for tests and ``make run``::

    with ProfileReceiver(tmp_path / "receiver.sqlite") as receiver:
        receiver.set_fault("http_500", times=3)
        ... post to receiver.url ...
        assert receiver.accepted_keys() == [...]

Command line (until SIGTERM or Ctrl-C; the token, if any, from ``PROFILE_RECEIVER_TOKEN``, never
from the command line, where ``ps`` shows it)::

    python -m devservices.profile_receiver --host 127.0.0.1 --port 8093 --store .local/receiver.sqlite
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import json
import logging
import os
import signal
import socket
import socketserver
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.client import responses
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

from devservices.http_bodies import read_request_body

# Not __name__: that is "__main__" when run with -m.
log = logging.getLogger("devservices.profile_receiver")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8093
# The project's root computed here, not imported from devservices.environment: that needs
# python-dotenv, and docker compose runs this module on a plain Python image (standard library only).
DEFAULT_STORE = Path(__file__).resolve().parent.parent / ".local" / "profile_receiver.sqlite"
TOKEN_ENV = "PROFILE_RECEIVER_TOKEN"  # noqa: S105 (the variable's name, not a token)

PROFILES_PATH = "/profiles"
HEALTH_PATH = "/health"
ACCEPTED_PATH = "/accepted"
CONTROL_PATH = "/control"

REQUEST_FAULTS = ("http_500", "timeout", "drop_after_accept")
FAULT_MODES = (*REQUEST_FAULTS, "down")
# Longer than any sender's read timeout (the relay's is 10 s): the sender must give up first.
DEFAULT_HOLD_S = 30.0
# A batch of 1,000 profiles is about 1 MB; anything far larger is a client bug, not a batch.
MAX_BODY = 32 << 20
MAX_KEY_LENGTH = 500
# Idle keep-alive connections are dropped after this, so their threads do not linger.
IDLE_TIMEOUT_S = 60
# After a "down", another process may still hold the port for a moment (TIME_WAIT is not the
# problem, SO_REUSEADDR covers it; a racing bind is): rebinding is retried this long.
REBIND_TIMEOUT_S = 10.0


class ReceiverStore:
    """The profiles the receiver accepted, by idempotency key, in a SQLite file.

    One connection behind a lock: the receiver's request threads take turns, and each batch is
    one transaction, so a batch is either stored whole or not at all.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        # WAL + NORMAL: a committed batch survives the receiver's process dying (what the fault
        # tests do to it); only a power cut could lose the last ones, which a stand-in may.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS accepted ("
            " key TEXT PRIMARY KEY,"
            " profile TEXT NOT NULL,"
            " accepted_at TEXT NOT NULL,"
            " duplicate_posts INTEGER NOT NULL DEFAULT 0)"
        )

    def accept(self, items: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
        """Store the new keys of ``(key, profile)`` pairs; ``accepted``/``duplicate`` for each."""
        now = datetime.now(UTC).isoformat()
        statuses = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for key, profile in items:
                    inserted = self._db.execute(
                        "INSERT INTO accepted (key, profile, accepted_at) VALUES (?, ?, ?)"
                        " ON CONFLICT (key) DO NOTHING",
                        (key, json.dumps(profile, ensure_ascii=False), now),
                    ).rowcount
                    if not inserted:
                        self._db.execute(
                            "UPDATE accepted SET duplicate_posts = duplicate_posts + 1 WHERE key = ?", (key,)
                        )
                    statuses.append("accepted" if inserted else "duplicate")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return statuses

    def keys(self) -> list[str]:
        """Every accepted key, in the order they were accepted."""
        return [key for (key,) in self._query("SELECT key FROM accepted ORDER BY rowid")]

    def profiles(self) -> dict[str, dict[str, Any]]:
        """Every accepted profile by key, as the sender posted it."""
        rows = self._query("SELECT key, profile FROM accepted ORDER BY rowid")
        return {key: json.loads(profile) for key, profile in rows}

    def duplicate_posts(self) -> dict[str, int]:
        """How many times each key was posted again after it was accepted (keys posted once: absent)."""
        return dict(self._query("SELECT key, duplicate_posts FROM accepted WHERE duplicate_posts > 0"))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _query(self, query: str) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(query).fetchall()


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault armed for the next ``times`` batches (``seconds``: how long a timeout holds)."""

    mode: str
    times: int
    seconds: float = DEFAULT_HOLD_S

    def to_json(self) -> dict[str, Any]:
        held = {"seconds": self.seconds} if self.mode == "timeout" else {}
        return {"mode": self.mode, "times": self.times, **held}


class FaultError(ValueError):
    """A fault setting the receiver does not understand; the message says what is allowed."""


def parse_fault(document: object) -> tuple[str, int, float | None]:
    """``(mode, times, seconds)`` from a ``POST /control`` body; raises :class:`FaultError`."""
    if not isinstance(document, dict):
        raise FaultError("the body must be a JSON object with a 'mode'")
    mode = document.get("mode")
    if mode not in FAULT_MODES:
        raise FaultError(f"mode must be one of {', '.join(FAULT_MODES)}, not {mode!r}")
    times = document.get("times", 1)
    seconds = document.get("seconds")
    if mode == "down":
        if not _positive_number(seconds):
            raise FaultError("mode 'down' needs 'seconds', a number > 0: how long to stay down")
        return mode, 1, float(seconds)
    if isinstance(times, bool) or not isinstance(times, int) or times < 1:
        raise FaultError(f"'times' must be an integer >= 1 (how many batches fail), not {times!r}")
    if seconds is not None and not _positive_number(seconds):
        raise FaultError(f"'seconds' must be a number > 0 (how long a timeout holds), not {seconds!r}")
    return mode, times, None if seconds is None else float(seconds)


def _positive_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    payload: dict[str, Any] | None  # None: close the connection without answering
    headers: tuple[tuple[str, str], ...] = ()
    # Runs once the answer is on the wire (going down after saying so).
    then: Callable[[], None] | None = None


def _error(status: int, detail: str, *headers: tuple[str, str]) -> _Answer:
    return _Answer(status, {"error": responses.get(status, "Error"), "detail": detail}, headers)


class BatchError(ValueError):
    """A ``POST /profiles`` body that does not follow the contract."""


def parse_batch(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    """The ``(key, profile)`` pairs of a ``POST /profiles`` body; raises :class:`BatchError`."""
    try:
        document = json.loads(body)
    except ValueError as error:
        raise BatchError(f"the body is not JSON: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("profiles"), list):
        raise BatchError('the body must be a JSON object {"profiles": [{"key": ..., "profile": {...}}]}')
    items = document["profiles"]
    if not items:
        raise BatchError("'profiles' is empty: post at least one profile")
    pairs = []
    for index, item in enumerate(items):
        key = item.get("key") if isinstance(item, dict) else None
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_LENGTH:
            raise BatchError(
                f"profiles[{index}]: 'key' must be a non-empty string of at most {MAX_KEY_LENGTH} characters"
            )
        if not isinstance(item.get("profile"), dict):
            raise BatchError(f"profiles[{index}] (key {key!r}): 'profile' must be a JSON object")
        pairs.append((key, item["profile"]))
    return pairs


class _Listener(ThreadingHTTPServer):
    """One listening socket of the receiver; a ``down`` fault closes it and later opens another."""

    # Request threads must never keep the process alive (held or idle keep-alive ones).
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], receiver: ProfileReceiver) -> None:
        self.receiver = receiver
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)
        self._thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.1},  # how long closing waits for the loop to notice
            name=f"profile-receiver-{self.server_address[1]}",
            daemon=True,
        )
        self._thread.start()

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS round-trip that can take
        # seconds on a sandboxed machine; the name is only used in CGI variables.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def track(self, connection: socket.socket, *, open_: bool) -> None:
        with self._connections_lock:
            (self._connections.add if open_ else self._connections.discard)(connection)

    def close(self) -> None:
        """Stop listening and cut every open connection, as a crashed service would."""
        self.shutdown()
        self.server_close()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by its client
                connection.shutdown(socket.SHUT_RDWR)
        self._thread.join()

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        # socketserver calls this from its ``except`` block: the error is the current exception.
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError | OSError):
            # Clients that give up, and connections a fault cut, are this server's point.
            log.debug("connection from %s ended: %r", client_address[0], error)
        else:
            log.error("request from %s failed", client_address[0], exc_info=error)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the sender reuses connections (requests.Session)
    server_version = "ProfileReceiver/1.0"
    timeout = IDLE_TIMEOUT_S
    # Headers and body leave in two writes: with Nagle's algorithm, the second waits for the
    # client's delayed ACK of the first, 40 ms per keep-alive request.
    disable_nagle_algorithm = True
    server: _Listener

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        self.server.track(self.connection, open_=False)
        super().finish()

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def _route(self, method: str) -> None:
        receiver = self.server.receiver
        routes: dict[str, dict[str, Callable[[bytes], _Answer]]] = {
            HEALTH_PATH: {"GET": lambda _: _Answer(200, {"status": "ok"})},
            PROFILES_PATH: {"POST": self._post_profiles},
            ACCEPTED_PATH: {"GET": lambda _: _Answer(200, receiver.accepted_summary())},
            CONTROL_PATH: {
                "GET": lambda _: _Answer(200, receiver.fault_state()),
                "POST": self._post_control,
                "DELETE": lambda _: _Answer(200, receiver.clear_faults()),
            },
        }
        path = self.path.split("?", 1)[0]
        body = read_request_body(self, MAX_BODY)
        handlers = routes.get(path)
        if body is None:
            answer = _error(413, f"bodies are limited to {MAX_BODY} bytes")
        elif handlers is None:
            answer = _error(404, f"no such path: {path}")
        elif method not in handlers:
            allow = ", ".join(handlers)
            answer = _error(405, f"use {allow}", ("Allow", allow))
        elif path != HEALTH_PATH and not receiver.authorized(self.headers.get("Authorization")):
            answer = _error(
                401,
                "send the receiver's token as 'Authorization: Bearer <token>'",
                ("WWW-Authenticate", "Bearer"),
            )
        else:
            answer = handlers[method](body)
        self._reply(answer)
        if answer.then is not None:
            answer.then()
        if path != HEALTH_PATH:
            log.debug("%s %s -> %s", method, path, answer.status)

    def _post_profiles(self, body: bytes) -> _Answer:
        receiver = self.server.receiver
        try:
            items = parse_batch(body)
        except BatchError as error:
            log.warning("POST %s refused: %s", PROFILES_PATH, error)
            return _error(400, str(error))
        fault = receiver.draw_fault()
        if fault is not None and fault.mode == "http_500":
            log.warning("POST %s: injected 500, %d profiles not stored", PROFILES_PATH, len(items))
            return _error(500, "injected fault: the batch was not stored")
        if fault is not None and fault.mode == "timeout":
            log.warning(
                "POST %s: injected timeout, holding %d profiles %g s",
                PROFILES_PATH,
                len(items),
                fault.seconds,
            )
            receiver.hold(fault.seconds)
            return _Answer(504, None)
        statuses = receiver.store.accept(items)
        accepted = statuses.count("accepted")
        log.info(
            "POST %s: %d profiles, %d accepted, %d duplicate%s",
            PROFILES_PATH,
            len(items),
            accepted,
            len(items) - accepted,
            ", connection dropped without an answer (injected)" if fault is not None else "",
        )
        if fault is not None:  # drop_after_accept
            return _Answer(200, None)
        results = [{"key": key, "status": status} for (key, _), status in zip(items, statuses, strict=True)]
        return _Answer(200, {"results": results})

    def _post_control(self, body: bytes) -> _Answer:
        receiver = self.server.receiver
        try:
            mode, times, seconds = parse_fault(json.loads(body or b"null"))
        except ValueError as error:  # FaultError, or a body that is not JSON
            return _error(400, str(error))
        if mode == "down":
            assert seconds is not None
            # Answer first, then close: the caller learns the fault is set, then is refused.
            return _Answer(200, {"mode": "down", "seconds": seconds}, then=lambda: receiver.go_down(seconds))
        return _Answer(200, receiver.set_fault(mode, times=times, seconds=seconds))

    def _reply(self, answer: _Answer) -> None:
        if answer.payload is None:
            # No status line, no bytes: the client sees its connection closed under it.
            self.close_connection = True
            return
        body = json.dumps(answer.payload, ensure_ascii=False).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        for name, value in answer.headers:
            self.send_header(name, value)
        if answer.then is not None:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silenced: one line per batch is logged by the route, never the headers (the token)."""

    def log_message(self, format: str, *args: Any) -> None:
        # Only protocol events get here: bad request lines, unsupported methods, idle timeouts.
        log.info("%s: %s", self.address_string(), format % args)


class ProfileReceiver:
    """The receiver in background threads, for tests, benchmarks and ``make run``.

    The socket is bound by :meth:`start` (``port=0`` picks a free port, kept across ``down``
    faults); :meth:`stop` or leaving the ``with`` block closes it and the store.
    """

    def __init__(
        self, store_path: Path, host: str = DEFAULT_HOST, port: int = 0, token: str | None = None
    ) -> None:
        self.host = host
        self._port = port
        self._token = token or None
        self._store_path = Path(store_path)
        self._store: ReceiverStore | None = None
        self._listener: _Listener | None = None
        self._fault: Fault | None = None
        self._down_until: float | None = None
        # Outages begun so far: lets a caller wait for one it asked for to have begun and ended.
        self._outages = 0
        self._stopping = threading.Event()
        # Guards the listener's life (up, down, back up) and the armed fault.
        self._lock = threading.Condition()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def port(self) -> int:
        if self._store is None:
            raise RuntimeError("the profile receiver is not running: start it first")
        return self._port

    @property
    def store(self) -> ReceiverStore:
        if self._store is None:
            raise RuntimeError("the profile receiver is not running: start it first")
        return self._store

    def start(self) -> Self:
        with self._lock:
            if self._store is not None:
                raise RuntimeError("the profile receiver is already running")
            self._stopping.clear()
            self._store = ReceiverStore(self._store_path)
            try:
                self._listener = _Listener((self.host, self._port), self)
            except OSError:
                self._store.close()
                self._store = None
                raise
            self._port = self._listener.server_address[1]
        return self

    def stop(self) -> None:
        """Close the socket, cut held requests short, close the store. Idempotent."""
        self._stopping.set()
        with self._lock:
            listener, self._listener = self._listener, None
            self._down_until = None
            self._lock.notify_all()
            if listener is not None:
                listener.close()
            if self._store is not None:
                self._store.close()
                self._store = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # What was received.

    def accepted_keys(self) -> list[str]:
        """Every key accepted so far (and before a restart), in acceptance order."""
        return self.store.keys()

    def accepted(self) -> dict[str, dict[str, Any]]:
        """Every accepted profile by key."""
        return self.store.profiles()

    def duplicate_posts(self) -> dict[str, int]:
        """Keys posted again after acceptance, with how many times."""
        return self.store.duplicate_posts()

    def accepted_summary(self) -> dict[str, Any]:
        """The ``GET /accepted`` document."""
        keys = self.accepted_keys()
        return {"count": len(keys), "keys": keys, "duplicate_posts": sum(self.duplicate_posts().values())}

    # Faults.

    def set_fault(self, mode: str, *, times: int = 1, seconds: float | None = None) -> dict[str, Any]:
        """Arm a fault, as ``POST /control`` does; ``down`` returns once the socket is closed.

        A request fault replaces the one armed before. Returns the fault state.
        """
        mode, times, seconds = parse_fault({"mode": mode, "times": times, "seconds": seconds})
        if mode == "down":
            assert seconds is not None
            self.go_down(seconds)
        else:
            with self._lock:
                self._fault = Fault(mode, times, DEFAULT_HOLD_S if seconds is None else seconds)
            log.info("fault armed: %s for the next %d batch(es)", mode, times)
        return self.fault_state()

    def clear_faults(self) -> dict[str, Any]:
        """Disarm the request fault and, if down, listen again now."""
        with self._lock:
            self._fault = None
            if self._down_until is not None:
                self._down_until = None
                self._lock.notify_all()
                self._listen_again()
        log.info("faults cleared")
        return self.fault_state()

    def fault_state(self) -> dict[str, Any]:
        """The ``GET /control`` document."""
        with self._lock:
            down_for = None if self._down_until is None else max(self._down_until - time.monotonic(), 0.0)
            return {
                "fault": None if self._fault is None else self._fault.to_json(),
                "down_for_seconds": down_for,
            }

    def go_down(self, seconds: float) -> None:
        """Close the listening socket and every connection; listen again after ``seconds``."""
        with self._lock:
            already_down = self._down_until is not None
            self._outages += 0 if already_down else 1
            self._down_until = time.monotonic() + seconds
            self._lock.notify_all()
            listener, self._listener = self._listener, None
            if listener is not None:
                listener.close()
        log.warning("down for %g s: connections to port %d are refused", seconds, self._port)
        if not already_down:
            threading.Thread(target=self._come_back, name="profile-receiver-outage", daemon=True).start()

    def is_down(self) -> bool:
        with self._lock:
            return self._down_until is not None

    def outages(self) -> int:
        """How many outages have begun (an outage extended while down is the same one)."""
        with self._lock:
            return self._outages

    def draw_fault(self) -> Fault | None:
        """The fault this batch gets, if one is armed (counting it down)."""
        with self._lock:
            fault = self._fault
            if fault is None:
                return None
            remaining = fault.times - 1
            self._fault = Fault(fault.mode, remaining, fault.seconds) if remaining else None
            return fault

    def hold(self, seconds: float) -> None:
        """Keep a request waiting (a ``timeout`` fault); cut short when the receiver stops."""
        self._stopping.wait(seconds)

    def authorized(self, header: str | None) -> bool:
        if self._token is None:
            return True
        scheme, _, given = (header or "").partition(" ")
        # Compared in constant time: the answer must not tell how much of a guess was right.
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), self._token.encode()
        )

    def _come_back(self) -> None:
        with self._lock:
            while not self._stopping.is_set() and self._down_until is not None:
                remaining = self._down_until - time.monotonic()
                if remaining <= 0:
                    self._down_until = None
                    self._listen_again()
                    break
                self._lock.wait(remaining)

    def _listen_again(self) -> None:
        """Bind the same port again (called with the lock held, while down)."""
        deadline = time.monotonic() + REBIND_TIMEOUT_S
        while self._listener is None and not self._stopping.is_set():
            try:
                self._listener = _Listener((self.host, self._port), self)
            except OSError as error:
                if time.monotonic() > deadline:
                    log.error(
                        "cannot listen on port %d again: %s; the receiver stays down", self._port, error
                    )
                    return
                self._lock.wait(0.1)
        log.info("up again on port %d", self._port)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    receiver = ProfileReceiver(args.store, host=args.host, port=args.port, token=os.environ.get(TOKEN_ENV))
    try:
        receiver.start()
    except OSError as error:
        log.error("cannot listen on %s:%s: %s", args.host, args.port, error)
        return 1
    try:
        token = "a bearer token" if os.environ.get(TOKEN_ENV) else "no token"
        print(f"profile receiver listening on {receiver.url} ({token}), storing to {args.store}", flush=True)
        stopping.wait()
        log.info("stopping")
    finally:
        receiver.stop()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devservices.profile_receiver",
        description=(
            "A local HTTP server that accepts user profiles by idempotency key and can be told to fail. "
            f"Set {TOKEN_ENV} to require 'Authorization: Bearer <token>'."
        ),
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (%(default)s)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port, 0 for any free one (%(default)s)"
    )
    parser.add_argument(
        "--store", type=Path, default=DEFAULT_STORE, help="SQLite file of the accepted profiles (%(default)s)"
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
