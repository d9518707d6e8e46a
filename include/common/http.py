"""What every HTTP source client shares: which failures are worth retrying, and how long to wait.

Transient failures (timeouts, dropped connections, bodies cut short, 5xx, 429) are retried a
bounded number of times with exponential backoff and jitter, honouring ``Retry-After`` up to a
cap; everything else fails at once. Messages never include the request URL: our sources take
credentials in the query string, and requests puts the full URL in its exception texts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_ATTEMPTS = 5


class TransientSourceError(RuntimeError):
    """A failure that may well not happen again; ``retry_after`` is the server's hint in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries of :class:`TransientSourceError` inside one task try.

    ``max_elapsed_s``, when set, also bounds the time: no attempt starts after it, so whoever
    waits for the result (the next task) waits at most about that long plus one attempt.
    """

    attempts: int = DEFAULT_ATTEMPTS
    initial_wait_s: float = 1.0
    max_wait_s: float = 30.0
    max_retry_after_s: float = 120.0
    max_elapsed_s: float | None = None

    @property
    def limits(self) -> str:
        """The bounds in words, for messages: "5 attempts", "5 attempts or 120 s"."""
        within = f" or {self.max_elapsed_s:g} s" if self.max_elapsed_s is not None else ""
        return f"{self.attempts} attempts{within}"

    def call(self, operation: Callable[[], T], *, what: str) -> T:
        stop = stop_after_attempt(self.attempts)
        if self.max_elapsed_s is not None:
            stop |= stop_before_delay(self.max_elapsed_s)
        retrying = Retrying(
            stop=stop,
            wait=self._wait,
            retry=retry_if_exception_type(TransientSourceError),
            before_sleep=lambda state: _log_retry(state, what),
            reraise=True,
        )
        return retrying(operation)

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        hint = getattr(error, "retry_after", None)
        if hint is not None:
            return min(max(hint, 0.0), self.max_retry_after_s)
        backoff = wait_exponential_jitter(multiplier=self.initial_wait_s, max=self.max_wait_s)
        return backoff(state)


def _log_retry(state: RetryCallState, what: str) -> None:
    error = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.warning("%s failed (attempt %d): %s; retrying in %.1f s", what, state.attempt_number, error, wait)


def retry_after_seconds(response: requests.Response) -> float | None:
    """The ``Retry-After`` header in seconds, whether given as a number or an HTTP date."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # A date is relative to the server's clock, so it needs the current time by nature.
    return max((moment - datetime.now(UTC)).total_seconds(), 0.0)


def describe_transport_error(error: requests.RequestException) -> str:
    """A URL-free description of a transport failure (requests' own text embeds the URL)."""
    kinds = (
        (requests.Timeout, "timed out"),
        (requests.exceptions.ChunkedEncodingError, "the response body was cut off"),
        (requests.ConnectionError, "the connection failed"),
    )
    for kind, text in kinds:
        if isinstance(error, kind):
            return f"{text} ({type(error).__name__})"
    return type(error).__name__
