"""Client of the learning platform's statistics API (``GET /api/statistics``).

Built like an Airflow hook: one connection id holds everything (host = base URL, login =
client, password = client_key, extras = timeouts), and the connection is read only when a
task runs. The contract is in ``shared/LEARNING_PLATFORM_API.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TypeVar

import requests

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

T = TypeVar("T")


class LearningPlatformAuthError(RuntimeError):
    """The API refused our credentials: retrying cannot help, the connection must be fixed."""


class LearningPlatformResponseError(RuntimeError):
    """The API answered something the contract does not allow."""


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

    def __enter__(self) -> LearningPlatformClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def stream_window(self, window: Interval, land: Callable[[Iterator[str]], T]) -> T:
        """Hand ``land`` the JSON text of every record the API returns for ``window``, as it arrives.

        Memory holds one record, not the window. A transient fault (a 5xx, a body cut short,
        malformed JSON) can surface after ``land`` has taken some records, so the whole exchange
        is retried: ``land`` must discard what an earlier attempt gave it (a savepoint does).

        The API treats the window as closed and may return records outside it; keeping only
        ``[start, end)`` is the validation's job, so that such records are counted, not lost.
        """
        return self._retry.call(
            lambda: self._stream_once(window, land), what=f"GET {STATISTICS_PATH} {window}"
        )

    def _stream_once(self, window: Interval, land: Callable[[Iterator[str]], T]) -> T:
        params = {**self._credentials, "start": api_time(window.start), "end": api_time(window.end)}
        try:
            with self._session.get(self._url, params=params, timeout=self._timeout, stream=True) as response:
                self._check_status(response)
                return land(array_elements(response.iter_content(chunk_size=CHUNK_BYTES)))
        except MalformedJSON as error:
            # A body cut at a byte boundary the transport did not notice, or a garbled answer.
            raise TransientSourceError(f"the response body is not valid JSON: {error}") from None
        except NotAnArray as error:
            raise LearningPlatformResponseError(f"expected a JSON array of records: {error}") from None
        except requests.RequestException as error:
            raise TransientSourceError(describe_transport_error(error)) from None

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


def api_time(moment: datetime) -> str:
    """The API's timestamp format: UTC, ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _base_url(host: str, port: int | None) -> str:
    # The host field holds the base URL; a bare host name means HTTPS.
    base = (host if "://" in host else f"https://{host}").rstrip("/")
    return f"{base}:{port}" if port else base
