"""Client of the learning platform's statistics API (``GET /api/statistics``).

Built like an Airflow hook: one connection id holds everything (host = base URL, login =
client, password = client_key, extras = timeouts), and the connection is read only when a
task runs. The contract is in ``shared/LEARNING_PLATFORM_API.md``.
"""

from __future__ import annotations

import logging
from datetime import datetime

import requests

from include.common.http import (
    DEFAULT_ATTEMPTS,
    RetryPolicy,
    TransientSourceError,
    describe_transport_error,
    retry_after_seconds,
)
from include.common.intervals import Interval

log = logging.getLogger(__name__)

API_CONN_ID = "learning_platform_api"
STATISTICS_PATH = "/api/statistics"
DEFAULT_TIMEOUT = (10.0, 120.0)  # connect, read: a busy hour is tens of megabytes


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

    def fetch_window(self, window: Interval) -> list[object]:
        """Every record the API returns for ``window``, as decoded JSON values.

        The API treats the window as closed and may return records outside it; keeping only
        ``[start, end)`` is the validation's job, so that such records are counted, not lost.
        """
        return self._retry.call(lambda: self._fetch_once(window), what=f"GET {STATISTICS_PATH} {window}")

    def _fetch_once(self, window: Interval) -> list[object]:
        params = {**self._credentials, "start": _api_time(window.start), "end": _api_time(window.end)}
        try:
            response = self._session.get(self._url, params=params, timeout=self._timeout)
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
            records = response.json()
        except requests.JSONDecodeError:
            # A body cut at a byte boundary the transport did not notice, or a garbled answer.
            raise TransientSourceError("the response body is not valid JSON") from None
        except requests.RequestException as error:
            raise TransientSourceError(describe_transport_error(error)) from None
        if not isinstance(records, list):
            raise LearningPlatformResponseError(
                f"expected a JSON array of records, got a JSON {type(records).__name__}"
            )
        return records


def _api_time(moment: datetime) -> str:
    """The API's timestamp format: UTC, ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _base_url(host: str, port: int | None) -> str:
    # The host field holds the base URL; a bare host name means HTTPS.
    base = (host if "://" in host else f"https://{host}").rstrip("/")
    return f"{base}:{port}" if port else base
