"""The processor: judges each generated profile once by its age, and queues the ones to send.

The decision: judging is one SQL statement per batch (``sql/judge_batch.sql``) that claims up
to 500 unjudged profiles with ``FOR UPDATE SKIP LOCKED``, sets their age on the run's reference
date and queues the in-range ones in the outbox, committed together. A profile is judged by the
transaction that committed its ``judged_at``, and no later statement matches it again, so a
retried task, or two processors on one run, judge every profile exactly once; no Python runs per
profile. When nothing is new the processor sleeps briefly (``poll_seconds``) and looks again.

It ends when the run is generated and no profile is left unjudged, and marks the run processed
(the sender ends only after that). Waiting for profiles that never come is bounded:
``stall_limit`` without a new profile (the generator's retries exhausted, say) fails the task
naming the profile it waited for.

The price: an idle processor polls the store a few times a second (one indexed query each).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from include.profile_relay import store
from include.profile_relay.reconnect import ReconnectingStore

log = logging.getLogger(__name__)

DEFAULT_STALL_LIMIT = timedelta(minutes=15)
DEFAULT_OUTAGE_LIMIT = timedelta(minutes=2)


class ProcessingStalled(RuntimeError):
    """No new profile came for longer than the processor waits; the task's retry waits again."""


@dataclass(frozen=True, slots=True)
class ProcessResult:
    judged: int
    queued: int
    batches: int
    seconds: float
    reconnects: int
    processed_at: datetime


def run_processor(
    connect: Callable[[], psycopg.Connection],
    *,
    run_id: str,
    poll_seconds: float,
    stall_limit: timedelta = DEFAULT_STALL_LIMIT,
    outage_limit: timedelta = DEFAULT_OUTAGE_LIMIT,
    batch: int = store.JUDGE_BATCH,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    logger: logging.Logger = log,
) -> ProcessResult:
    """Judge the run's profiles as they are stored, until it is generated and all are judged."""
    started = last_progress = clock()
    judged = queued = batches = 0
    seen_stored = -1
    with ReconnectingStore(connect, outage_limit=outage_limit, clock=clock, sleep=sleep, logger=logger) as db:
        while True:
            done = db.run(lambda conn: store.judge_batch(conn, run_id, limit=batch), what="judging profiles")
            if done.judged:
                judged, queued, batches = judged + done.judged, queued + done.queued, batches + 1
                last_progress = clock()
                continue
            state = db.run(lambda conn: store.judging_state(conn, run_id), what="waiting for profiles")
            if state.generated and not state.unjudged:
                processed_at = db.run(
                    lambda conn: store.mark_processed(conn, run_id), what="marking the run processed"
                )
                if processed_at is not None:
                    break
            if state.stored != seen_stored:
                # A newly stored profile is progress, even if another processor judged it first.
                seen_stored, last_progress = state.stored, clock()
            elif clock() - last_progress > stall_limit.total_seconds():
                raise ProcessingStalled(
                    f"run {run_id}: no new profile for {stall_limit}, waiting for profile "
                    f"{state.stored + 1}. Is the run's generate task running? It may have failed for "
                    "good: clear it (it resumes where it stopped), then this task"
                )
            sleep(poll_seconds)
        result = ProcessResult(
            judged=judged,
            queued=queued,
            batches=batches,
            seconds=clock() - started,
            reconnects=db.reconnects,
            processed_at=processed_at,
        )
    logger.info(
        "judged %d profiles in %d batches, queued %d in range, in %.1f s; %d reconnects",
        judged,
        batches,
        queued,
        result.seconds,
        result.reconnects,
    )
    return result
