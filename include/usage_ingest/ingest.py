"""One range of one file into the store, batch by batch, resuming from its checkpoint.

The loop reads the range from its committed offset (the store's checkpoint, not the task's
memory), parses it into batches (``include.usage_ingest.lines``) and hands each to
``store.apply_batch``, which adds the sums and moves the checkpoint in one transaction. So a
retry, a worker restarted mid-range, or a second process on the same range (a run that took
over an expired claim while the first still worked) carries on where the store says, and a batch
another process committed first comes back "stale": we re-read the checkpoint and continue from
there, applying nothing twice.

A database that goes away mid-range is not retried here: the task fails and Airflow's retry
resumes from the last committed batch, losing at most one batch of work.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

import psycopg

from include.common.failures import PermanentFailure
from include.usage_ingest import lines, store
from include.usage_ingest.finished import FileChanged, file_changed
from include.usage_ingest.model import BatchLimits

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RangeResult:
    """What one call did to one range: the batches it committed, and the range's state after."""

    file_id: int
    range_no: int
    batches: int
    lines_applied: int
    lines_quarantined: int
    # Batches another process had committed first: skipped here, never applied twice.
    stale: int
    done: bool
    seconds: float


def process_range(
    conn: psycopg.Connection,
    file_id: int,
    range_no: int,
    *,
    limits: BatchLimits,
    committed_by: str,
    lease: timedelta,
) -> RangeResult:
    """Apply the rest of range ``range_no`` of ``file_id`` from its checkpoint to its end."""
    started = time.perf_counter()
    batches = applied = quarantined = stale = 0
    state = store.range_state(conn, file_id, range_no)
    while not state.done:
        _refuse_changed(state)
        checkpoint = state.committed_offset
        for batch in lines.read_batches(
            state.path,
            start=state.committed_offset,
            end=state.end_offset,
            first_line=state.next_line,
            limits=limits,
        ):
            # The batch was read; a file changed under it must not reach the totals.
            _refuse_changed(state)
            batch_started = time.perf_counter()
            if not store.apply_batch(conn, file_id, range_no, batch, committed_by=committed_by, lease=lease):
                stale += 1
                log.info(
                    "%s: bytes %d… were committed by another process: continuing from its checkpoint",
                    state.name,
                    batch.start,
                )
                break
            batches += 1
            applied += batch.applied_lines
            quarantined += len(batch.bad_lines)
            log.info(
                "%s: bytes %d–%d, lines %d–%d: %d applied, %d quarantined, %d consumers, %.0f ms",
                state.name,
                batch.start,
                batch.end,
                batch.first_line,
                batch.next_line - 1,
                batch.applied_lines,
                len(batch.bad_lines),
                len(batch.consumers),
                (time.perf_counter() - batch_started) * 1000,
            )
        state = store.range_state(conn, file_id, range_no)
        if not state.done and state.committed_offset == checkpoint:
            raise PermanentFailure(
                f"{state.name} range {range_no}: reading from byte {checkpoint} committed nothing and the "
                f"range ends at {state.end_offset}: a bug in the parser or the store; the range's "
                "checkpoint is intact, report it with this message"
            )
    seconds = time.perf_counter() - started
    log.info(
        "%s range %d: %d batches, %d lines applied, %d quarantined, %d stale, %.1f s",
        state.name,
        range_no,
        batches,
        applied,
        quarantined,
        stale,
        seconds,
    )
    return RangeResult(file_id, range_no, batches, applied, quarantined, stale, state.done, seconds)


def _refuse_changed(state: store.RangeState) -> None:
    if change := file_changed(state.file):
        raise FileChanged(
            f"{state.name} changed after it was planned ({change}): its writer had not finished "
            "when it was claimed. Raise the param settle_seconds above the writer's longest pause "
            "(or make it write .part files and rename them). The batches of it already committed "
            f"stay in the totals (usage_ingest.batches, file_id {state.file_id}). If the same content "
            "was dropped again over it, nothing is to be done: once this run's lease on it expires, a "
            "later run takes it over and goes on from the checkpoint. Other content is a new file and "
            "is added whole, so subtract those batches first"
        )
