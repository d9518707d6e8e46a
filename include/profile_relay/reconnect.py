"""One PostgreSQL connection per stage that outlives a restarted or briefly unreachable server.

The three stages run for as long as the generation does (hours at 0.5 s a profile). A database
restart in that time must cost them a pause, not a task retry that waits minutes and starts a new
process. :class:`ReconnectingStore` runs each of a stage's steps (one transaction) on its
connection; when PostgreSQL goes away it drops the connection, waits (0.1 s doubling to 5 s),
reconnects and runs the step again. That is correct only because every step is safe to repeat:
a step either committed or did not, and each one claims, inserts or marks what is still to do,
so a repeated step does the rest and never a thing twice.

An outage longer than ``outage_limit`` raises :class:`StoreOutage`, an ordinary error: Airflow
retries the task, which resumes from the store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import psycopg

T = TypeVar("T")

log = logging.getLogger(__name__)


class StoreOutage(RuntimeError):
    """PostgreSQL stayed unreachable for longer than the stage waits; the task's retry resumes."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Waits that double from ``initial`` up to ``maximum`` seconds."""

    initial: float = 0.1
    maximum: float = 5.0

    def delays(self) -> Iterator[float]:
        delay = self.initial
        while True:
            yield delay
            delay = min(delay * 2, self.maximum)


class ReconnectingStore:
    """Runs steps on one connection, reconnecting when PostgreSQL went away (see the module)."""

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection],
        *,
        outage_limit: timedelta,
        backoff: Backoff = Backoff(),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        logger: logging.Logger = log,
    ) -> None:
        self._connect = connect
        self._outage_limit = outage_limit.total_seconds()
        self._backoff = backoff
        self._clock = clock
        self._sleep = sleep
        self._log = logger
        self._conn: psycopg.Connection | None = None
        self.reconnects = 0

    def run(self, step: Callable[[psycopg.Connection], T], *, what: str) -> T:
        """``step(conn)``'s result; repeated after a lost connection, so it must be repeatable."""
        down_since: float | None = None
        delays = self._backoff.delays()
        while True:
            try:
                if self._conn is None:
                    self._conn = self._connect()
                result = step(self._conn)
            except psycopg.OperationalError as error:
                self._drop()
                now = self._clock()
                reason = " ".join(str(error).split()) or type(error).__name__
                if down_since is None:
                    down_since = now
                    self._log.warning("PostgreSQL unreachable during %s (%s): reconnecting", what, reason)
                elif now - down_since > self._outage_limit:
                    raise StoreOutage(
                        f"{what}: PostgreSQL unreachable for {now - down_since:.0f} s, longer than the "
                        f"{self._outage_limit:.0f} s this task waits ({reason}). The task's retry resumes "
                        "where this one stopped; if it keeps failing, check the store's connection and server"
                    ) from None
                self._sleep(next(delays))
                continue
            if down_since is not None:
                self.reconnects += 1
                self._log.info("PostgreSQL back after %.1f s: %s resumed", self._clock() - down_since, what)
            return result

    def close(self) -> None:
        self._drop()

    def __enter__(self) -> ReconnectingStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:
                self._log.debug("closing a broken connection failed", exc_info=True)
