"""Stage 1: land every record the API returns for an interval in ``raw_attempts``.

The interval is fetched window by window (an hour by default) and each answer is streamed
record by record into COPY, so memory holds one record, whatever the day's volume (the next
window is requested while one is landed: ``LearningPlatformClient.stream_windows``). Records are
landed as the JSON text the API sent. All windows land in one transaction that first removes
the interval's previous landing: a retry or a rerun replaces, never appends, and a failure
half-way leaves the previous landing untouched. The landing is partitioned by day: the day's
partition is created first, in a short transaction of its own (see ``partitions``).

A window whose answer is malformed JSON on every retry fails the extract; a bounded part of
that answer is kept in ``malformed_answers`` (outside the failed transaction), and the error
names the window and the row.

The COPY is binary with its column types declared once (``open_landing``): psycopg then neither
looks up a dumper per value nor escapes each record's text, which makes writing a row several
times cheaper than a text COPY. Whoever else fills the landing (tests) opens it the same way, so
the column types are written down in one place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import timedelta

import psycopg

from include.common.intervals import Interval
from include.learning_platform.api import LearningPlatformClient, MalformedAnswer
from include.learning_platform.partitions import LANDING, create_day_partitions, require_day_partitions
from include.learning_platform.warehouse import interval_params, lock_day, open_binary_copy, sql

log = logging.getLogger(__name__)

# The columns of copy_raw.sql, in its order: a binary COPY must send each in its exact type.
_LANDING_TYPES = ("timestamptz", "timestamptz", "int4", "text", "text")


class UnreadableWindow(RuntimeError):
    """The API answered a window with malformed JSON through every retry of the try."""


@dataclass(frozen=True, slots=True)
class ExtractResult:
    windows: int
    fetched: int


def open_landing(cursor: psycopg.Cursor) -> AbstractContextManager[psycopg.Copy]:
    """A COPY into ``raw_attempts`` that takes rows of
    ``(window_start, window_end, position, record, dag_run_id)`` with ``copy.write_row``."""
    return open_binary_copy(cursor, "copy_raw", _LANDING_TYPES)


def record_landing(cursor: psycopg.Cursor, interval: Interval, *, records: int, dag_run_id: str) -> None:
    """Record a new landing of ``interval`` in ``landing_batches``, in the transaction that landed it.

    The row gets a new ``landing_id``: validate records which landing it judged, and load
    publishes only a verdict on the current one.
    """
    cursor.execute(
        sql("replace_landing_batch"), interval_params(interval, records=records, dag_run_id=dag_run_id)
    )


def extract_interval(
    conn: psycopg.Connection,
    client: LearningPlatformClient,
    interval: Interval,
    *,
    window: timedelta,
    dag_run_id: str,
) -> ExtractResult:
    """Fetch ``interval`` in windows of ``window`` and replace its landed records."""
    try:
        return _land_interval(conn, client, interval, window=window, dag_run_id=dag_run_id)
    except MalformedAnswer as answer:
        # The landing's transaction has rolled back: what the API sent is kept in a new one.
        keep_malformed_answer(conn, answer, dag_run_id=dag_run_id)
        raise UnreadableWindow(
            f"window {answer.window}: the API's answer was not valid JSON, also on the last retry "
            f"({answer.reason}). Its start and the text from where reading failed (character "
            f"{answer.broken_at:,} of a {answer.received:,}-byte body) are kept in the table "
            f"learning_platform.malformed_answers, row window_start {answer.window.start.isoformat()}. "
            "If the API keeps answering so, report it to its owners; the task retries later, or "
            "clear this run from `extract`"
        ) from None


def keep_malformed_answer(conn: psycopg.Connection, answer: MalformedAnswer, *, dag_run_id: str) -> None:
    """Record what the API sent for ``answer.window`` (the window's latest answer replaces any)."""
    with conn.transaction():
        conn.execute(
            sql("upsert_malformed_answer"),
            interval_params(
                answer.window,
                dag_run_id=dag_run_id,
                error=answer.reason,
                body_bytes=answer.received,
                body_head=answer.head,
                broken_at=answer.broken_at,
                # PostgreSQL text holds no NUL; a garbled body may.
                body_at_break=answer.excerpt.replace("\x00", "\ufffd"),
            ),
        )
    log.error(
        "window %s: malformed JSON (%s); %d bytes received, the answer kept in malformed_answers",
        answer.window,
        answer.reason,
        answer.received,
    )


def _land_interval(
    conn: psycopg.Connection,
    client: LearningPlatformClient,
    interval: Interval,
    *,
    window: timedelta,
    dag_run_id: str,
) -> ExtractResult:
    windows = fetched = 0
    create_day_partitions(conn, LANDING, interval)
    with conn.transaction(), conn.cursor() as cursor:
        lock_day(cursor, interval)
        require_day_partitions(cursor, LANDING, interval)
        cursor.execute(sql("delete_raw"), interval_params(interval))
        started = time.perf_counter()

        def land(part: Interval, records: Iterator[str]) -> int:
            # A savepoint per attempt: a retried window never keeps rows of a failed attempt.
            with conn.transaction(), open_landing(cursor) as copy:
                count = 0
                for count, record in enumerate(records, start=1):
                    copy.write_row((part.start, part.end, count - 1, record, dag_run_id))
            return count

        for part, landed in client.stream_windows(list(interval.windows(window)), land):
            windows += 1
            fetched += landed
            log.info("window %s: %d records in %.2f s", part, landed, time.perf_counter() - started)
            started = time.perf_counter()
        record_landing(cursor, interval, records=fetched, dag_run_id=dag_run_id)
    log.info("extract %s: %d records in %d windows", interval, fetched, windows)
    return ExtractResult(windows=windows, fetched=fetched)
