"""The generator: one profile per tick, on schedule, whatever the database or the other stages do.

The decision: the tick loop and the store are decoupled by an in-process queue. The main thread
waits for tick ``k`` (due at ``start + k × interval``, so waiting never drifts), makes profile
``seq`` from the run's seed and puts it on the queue with the wall-clock time of its tick; a
writer thread stores whatever is queued in one ``INSERT`` per batch and commits. When PostgreSQL
is slow or restarting, the writer waits and reconnects (see ``reconnect.py``) while the ticks go
on and the queue grows; the batch after the outage carries the backlog, each row with its own
``ticked_at``. A tick that came late (the machine was busy) is followed by the overdue ticks at
once, never by ticks ahead of their time, so the run keeps the schedule's rate overall.

What a killed try lost (ticked but not yet stored) is regenerated identically by the retry: it
resumes at the store's next seq, and profile ``n`` depends only on ``(seed, n)``
(``profiles.py``). The run is marked generated once all ``count`` profiles are stored.

The price: up to a queue's worth of ticked profiles live only in memory until their batch
commits. That is what a crash can lose, and the retry makes them again, with new tick times.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from include.profile_relay import store
from include.profile_relay.profiles import Profile, ProfileFactory
from include.profile_relay.reconnect import ReconnectingStore

log = logging.getLogger(__name__)

DEFAULT_OUTAGE_LIMIT = timedelta(minutes=2)
# Profiles per INSERT at most: one statement of about 1 MB, committed in milliseconds.
WRITE_BATCH = 1000
# Ticked profiles waiting for the store at most (about 1 KB each). At the default 0.5 s interval,
# the two minutes of outage the generator waits out are 240 profiles; only at intervals under
# ~2 ms, where there is no schedule to keep, can a slow store make the ticks wait for room.
QUEUE_LIMIT = 50_000
# How often a tick blocked by a full queue looks whether the writer has failed.
_FULL_QUEUE_CHECK_S = 1.0


class Ticker:
    """Waits for tick ``k`` of a schedule that starts at the first wait, ``interval`` apart.

    Tick ``k`` is due at ``start + k × interval``: the time spent between waits does not add up
    (no drift), and ticks missed while the caller was busy are due at once (it catches up) but
    none is ever early. ``clock`` and ``sleep`` are injectable so tests run on a fake clock.
    """

    def __init__(
        self,
        interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._sleep = sleep
        self._start: float | None = None
        # The latest a tick was released after it was due, in seconds (0 for a zero interval).
        self.max_lateness = 0.0

    def wait(self, k: int) -> float:
        """Return once tick ``k`` is due; returns how late it was released (0 if on time)."""
        now = self._clock()
        if self._start is None:
            self._start = now
        due = self._start + k * self.interval
        while now < due:
            self._sleep(due - now)
            now = self._clock()
        lateness = now - due
        if self.interval > 0:  # without a schedule every tick is "due" at the start: no lateness
            self.max_lateness = max(self.max_lateness, lateness)
        return lateness


@dataclass(frozen=True, slots=True)
class GenerateResult:
    count: int
    # The first seq this call made: above 1 when it resumed a run another try had begun.
    first_seq: int
    # Profiles this call stored (a retried batch's rows already there are not counted).
    stored: int
    seconds: float
    # How late the latest tick was released, in seconds (the machine's or the GIL's doing).
    max_tick_lateness: float
    reconnects: int
    generated_at: datetime


class _End:
    """Put on the queue after the last profile: the writer flushes and stops."""


class _Writer(threading.Thread):
    """Stores queued ``(profile, ticked_at)`` pairs in batches, until :class:`_End`."""

    def __init__(self, db: ReconnectingStore, run_id: str, *, batch: int = WRITE_BATCH) -> None:
        super().__init__(name=f"profile-writer[{run_id}]", daemon=True)
        self._db = db
        self._run_id = run_id
        self._batch = batch
        self._queue: queue.Queue[tuple[Profile, datetime] | _End] = queue.Queue(maxsize=QUEUE_LIMIT)
        self.error: BaseException | None = None
        self.stored = 0

    def put(self, item: tuple[Profile, datetime] | _End) -> None:
        """Queue ``item``; raises the writer's error instead of waiting for a writer that died."""
        while True:
            self.raise_error()
            try:
                self._queue.put(item, timeout=_FULL_QUEUE_CHECK_S)
                return
            except queue.Full:
                continue

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    def finish(self, *, raise_error: bool = True) -> None:
        """Store everything queued, stop, and raise what made the writer fail, if anything did."""
        while self.is_alive():
            try:
                self._queue.put(_End(), timeout=_FULL_QUEUE_CHECK_S)
                break
            except queue.Full:
                continue  # a live writer drains the queue; a dead one ends the loop
        self.join()
        if raise_error:
            self.raise_error()

    def run(self) -> None:
        try:
            while True:
                batch = [self._queue.get()]
                while len(batch) < self._batch:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                done = isinstance(batch[-1], _End)
                rows = [item for item in batch if not isinstance(item, _End)]
                if rows:
                    self.stored += self._db.run(
                        lambda conn, rows=rows: store.store_profiles(conn, self._run_id, rows),
                        what=f"storing profiles {rows[0][0].seq}..{rows[-1][0].seq}",
                    )
                if done:
                    return
        except BaseException as error:  # handed to the tick loop, which raises it in the task
            self.error = error


def run_generator(
    connect: Callable[[], psycopg.Connection],
    factory: ProfileFactory,
    *,
    run_id: str,
    count: int,
    interval: float,
    outage_limit: timedelta = DEFAULT_OUTAGE_LIMIT,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    logger: logging.Logger = log,
) -> GenerateResult:
    """Generate the run's profiles ``next_seq``..``count``, one per tick, then mark it generated.

    The run must be registered (``store.register_run``). Repeatable: a finished run is marked
    again and nothing is made; an interrupted one resumes after its last stored profile.
    """
    started = clock()
    with ReconnectingStore(connect, outage_limit=outage_limit, clock=clock, sleep=sleep, logger=logger) as db:
        first_seq = db.run(lambda conn: store.next_seq(conn, run_id), what="finding where to resume")
        if first_seq > 1:
            logger.info("resuming at profile %d of %d: 1..%d are stored", first_seq, count, first_seq - 1)
        ticker = Ticker(interval, clock=clock, sleep=sleep)
        writer = _Writer(db, run_id)
        writer.start()
        try:
            for k, seq in enumerate(range(first_seq, count + 1)):
                ticker.wait(k)
                ticked_at = datetime.now(UTC)
                writer.put((factory.make(seq), ticked_at))
                if seq % 1000 == 0:
                    logger.info("generated %d of %d profiles", seq, count)
        except BaseException:
            # What was made is still stored if the store can take it; the original error stands.
            writer.finish(raise_error=False)
            raise
        writer.finish()
        generated_at = db.run(
            lambda conn: store.mark_generated(conn, run_id), what="marking the run generated"
        )
        result = GenerateResult(
            count=count,
            first_seq=first_seq,
            stored=writer.stored,
            seconds=clock() - started,
            max_tick_lateness=ticker.max_lateness,
            reconnects=db.reconnects,
            generated_at=generated_at,
        )
    logger.info(
        "generated profiles %d..%d (%d stored now) in %.1f s; latest tick %.3f s late; %d reconnects",
        first_seq,
        count,
        result.stored,
        result.seconds,
        result.max_tick_lateness,
        result.reconnects,
    )
    return result
