"""Stage 1: land every record the API returns for an interval in ``raw_attempts``.

The interval is fetched window by window (an hour by default), so memory holds one window
at most whatever the day's volume. All windows land in one transaction that first removes
the interval's previous landing: a retry or a rerun replaces, never appends, and a failure
half-way leaves the previous landing untouched.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta

import psycopg

from include.common.intervals import Interval
from include.learning_platform.api import LearningPlatformClient
from include.learning_platform.warehouse import interval_params, lock_day, sql

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ExtractResult:
    windows: int
    fetched: int


def extract_interval(
    conn: psycopg.Connection,
    client: LearningPlatformClient,
    interval: Interval,
    *,
    window: timedelta,
    dag_run_id: str,
) -> ExtractResult:
    """Fetch ``interval`` in windows of ``window`` and replace its landed records."""
    windows = fetched = 0
    with conn.transaction(), conn.cursor() as cursor:
        lock_day(cursor, interval)
        cursor.execute(sql("delete_raw"), interval_params(interval))
        for part in interval.windows(window):
            started = time.perf_counter()
            records = client.fetch_window(part)
            with cursor.copy(sql("copy_raw")) as copy:
                for position, record in enumerate(records):
                    copy.write_row((part.start, part.end, position, _to_json(record), dag_run_id))
            windows += 1
            fetched += len(records)
            log.info("window %s: %d records in %.2f s", part, len(records), time.perf_counter() - started)
    log.info("extract %s: %d records in %d windows", interval, fetched, windows)
    return ExtractResult(windows=windows, fetched=fetched)


def _to_json(record: object) -> str:
    # ensure_ascii escapes NUL and lone surrogates, so any decoded record fits a text column.
    return json.dumps(record, ensure_ascii=True, separators=(",", ":"))
