"""Client of the learning platform's statistics API (``GET /api/statistics``).

Built like an Airflow hook: one connection id holds everything (host = base URL, login =
client, password = client_key, extras = timeouts), and the connection is read only when a
task runs. The contract is in ``shared/LEARNING_PLATFORM_API.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import TypeVar
from urllib.parse import quote, quote_plus

import requests

from include.common.failures import PermanentFailure
from include.common.http import (
    DEFAULT_ATTEMPTS,
    RetryPolicy,
    TransientSourceError,
    describe_transport_error,
    retry_after_seconds,
)
from include.common.intervals import Interval
from include.common.json_stream import MalformedJSON, NotAnArray, array_elements

log = logging.getLogger(__name__)

API_CONN_ID = "learning_platform_api"
STATISTICS_PATH = "/api/statistics"
DEFAULT_TIMEOUT = (10.0, 120.0)  # connect, read: a busy hour is tens of megabytes
CHUNK_BYTES = 1 << 16
KEPT_HEAD_BYTES = 64 * 1024  # of a malformed answer: enough to tell a proxy's page from a record

T = TypeVar("T")


class LearningPlatformAuthError(PermanentFailure):
    """The API refused our credentials: retrying cannot help, the connection must be fixed."""


class LearningPlatformResponseError(RuntimeError):
    """The API answered something the contract does not allow."""


class MalformedAnswer(TransientSourceError):
    """A window's answer is not valid JSON. Retried (a garbled answer may not recur); carries a
    bounded part of the body for inspection, with the client key masked wherever it was quoted."""

    def __init__(self, window: Interval, error: MalformedJSON, *, head: bytes, received: int) -> None:
        super().__init__(f"the response body is not valid JSON: {error}")
        self.window = window
        self.reason = str(error)
        self.head = head  # the body's first bytes
        self.received = received  # bytes of the body received in all
        self.broken_at = error.offset  # characters before the part that could not be read
        self.excerpt = error.excerpt  # the body from there


class LearningPlatformClient:
    """Fetches attempt records for a time window, retrying transient faults."""

    def __init__(
        self,
        base_url: str,
        client: str,
        client_key: str,
        *,
        conn_id: str = API_CONN_ID,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self._url = base_url.rstrip("/") + STATISTICS_PATH
        self._credentials = {"client": client, "client_key": client_key}
        self._conn_id = conn_id
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._session = session or requests.Session()
        # requests' sessions are not safe to share between threads: requests sent ahead get theirs.
        self._ahead_session = requests.Session()

    @classmethod
    def from_connection(cls, conn_id: str = API_CONN_ID) -> LearningPlatformClient:
        """Build the client from an Airflow connection (read at task run time, never at parse)."""
        from airflow.sdk import Connection  # deferred: keeps this module importable without Airflow

        connection = Connection.get(conn_id)
        if not (connection.host and connection.login and connection.password):
            raise LearningPlatformAuthError(
                f"Airflow connection '{conn_id}' needs host (the API base URL), "
                "login (client) and password (client_key)"
            )
        extras = connection.extra_dejson
        return cls(
            base_url=_base_url(connection.host, connection.port),
            client=connection.login,
            client_key=connection.password,
            conn_id=conn_id,
            timeout=(
                float(extras.get("connect_timeout", DEFAULT_TIMEOUT[0])),
                float(extras.get("read_timeout", DEFAULT_TIMEOUT[1])),
            ),
            retry=RetryPolicy(attempts=int(extras.get("retry_attempts", DEFAULT_ATTEMPTS))),
        )

    def close(self) -> None:
        self._session.close()
        self._ahead_session.close()

    def __enter__(self) -> LearningPlatformClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def stream_windows(
        self, windows: Sequence[Interval], land: Callable[[Interval, Iterator[str]], T]
    ) -> Iterator[tuple[Interval, T]]:
        """For each of ``windows`` in turn, hand ``land`` the JSON text of every record the API
        returns for it, as it arrives; yield the window and what ``land`` returned.

        Memory holds one record, not the window. A transient fault (a 5xx, a body cut short,
        malformed JSON) can surface after ``land`` has taken some records, so the whole exchange
        is retried: ``land`` must discard what an earlier attempt gave it (a savepoint does).

        The API builds a window's whole answer before it sends the first byte, so once a window's
        answer is accepted (its status is good: wrong credentials still cost one request), the
        next window is requested while this one is landed, on a thread and a session of its own:
        the API builds it meanwhile instead of after. Only that answer's headers are read ahead;
        its body waits in the socket. A request sent ahead that fails counts as its window's
        first failed attempt, and is retried as any other.

        The API treats a window as closed and may return records outside it; keeping only
        ``[start, end)`` is the validation's job, so that such records are counted, not lost.
        """
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="request-ahead") as ahead:
            requested: Future[requests.Response] | None = None
            try:
                for index, window in enumerate(windows):
                    sent_ahead, requested = requested, None
                    following = windows[index + 1] if index + 1 < len(windows) else None

                    def request_following(following: Interval | None = following) -> None:
                        nonlocal requested
                        if following is not None and requested is None:
                            requested = ahead.submit(self._request, following, self._ahead_session)

                    def attempt(window: Interval = window) -> T:
                        nonlocal sent_ahead
                        answer, sent_ahead = sent_ahead, None  # an answer read ahead serves one attempt
                        return self._stream_once(
                            window, lambda records: land(window, records), answer, request_following
                        )

                    yield window, self._retry.call(attempt, what=f"GET {STATISTICS_PATH} {window}")
            finally:
                # Stopped early (a window failed for good): no answer is left open.
                if requested is not None and not requested.cancel() and requested.exception() is None:
                    requested.result().close()

    def _request(self, window: Interval, session: requests.Session) -> requests.Response:
        """Send the request for ``window``; the answer's body is left to read."""
        params = {**self._credentials, "start": api_time(window.start), "end": api_time(window.end)}
        return session.get(self._url, params=params, timeout=self._timeout, stream=True)

    def _stream_once(
        self,
        window: Interval,
        land: Callable[[Iterator[str]], T],
        sent_ahead: Future[requests.Response] | None,
        accepted: Callable[[], None],
    ) -> T:
        """One exchange for ``window``; ``accepted`` is called once its answer's status is good."""
        body: _Received | None = None
        try:
            answer = sent_ahead.result() if sent_ahead else self._request(window, self._session)
            with answer:
                self._check_status(answer)
                accepted()
                body = _Received(answer.iter_content(chunk_size=CHUNK_BYTES))
                return land(array_elements(body))
        except MalformedJSON as error:
            # A body cut at a byte boundary the transport did not notice, or a garbled answer.
            raise self._malformed(window, error, body) from None
        except NotAnArray as error:
            raise LearningPlatformResponseError(f"expected a JSON array of records: {error}") from None
        except requests.RequestException as error:
            raise TransientSourceError(describe_transport_error(error)) from None

    def _malformed(self, window: Interval, error: MalformedJSON, body: _Received | None) -> MalformedAnswer:
        # An error page may quote the request's URL, and with it the client key.
        key = self._credentials["client_key"]
        secrets = {key, quote(key, safe=""), quote_plus(key)}
        head, excerpt = bytes(body.head) if body else b"", error.excerpt
        for secret in sorted(secrets, key=len, reverse=True):
            head = head.replace(secret.encode(), b"***")
            excerpt = excerpt.replace(secret, "***")
        masked = MalformedJSON(str(error), offset=error.offset, excerpt=excerpt)
        return MalformedAnswer(window, masked, head=head, received=body.size if body else 0)

    def _check_status(self, response: requests.Response) -> None:
        status = response.status_code
        if status in (401, 403):
            raise LearningPlatformAuthError(
                f"the statistics API refused the credentials of Airflow connection "
                f"'{self._conn_id}' (HTTP {status}): check its login (client) and "
                "password (client_key)"
            )
        if status == 429 or status >= 500:
            raise TransientSourceError(
                f"HTTP {status} {response.reason}", retry_after=retry_after_seconds(response)
            )
        if status != 200:
            raise LearningPlatformResponseError(f"unexpected HTTP {status} {response.reason}")


class _Received:
    """The chunks of an answer's body, passed on as they come; counts them and keeps the start."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self.head = bytearray()
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.size += len(chunk)
            if len(self.head) < KEPT_HEAD_BYTES:
                self.head += chunk[: KEPT_HEAD_BYTES - len(self.head)]
            yield chunk


def api_time(moment: datetime) -> str:
    """The API's timestamp format: UTC, ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _base_url(host: str, port: int | None) -> str:
    # The host field holds the base URL; a bare host name means HTTPS.
    base = (host if "://" in host else f"https://{host}").rstrip("/")
    return f"{base}:{port}" if port else base
