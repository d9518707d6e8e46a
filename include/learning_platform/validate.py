"""Stage 2: judge every landed record of an interval; stage attempts and rejections.

Records are read in batches through a server-side cursor and written back with COPY, so
memory holds one batch whatever the day's volume. The output goes to staging tables that
``load`` publishes; every landed record ends in exactly one of them.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field

import psycopg

from include.common.intervals import Interval
from include.learning_platform.rules import Attempt, validate_record
from include.learning_platform.warehouse import interval_params, lock_day, sql

log = logging.getLogger(__name__)

BATCH_SIZE = 20_000


@dataclass(slots=True)
class ValidateResult:
    checked: int = 0
    valid: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    defects: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        return {
            "checked": self.checked,
            "valid": self.valid,
            "rejected": self.rejected,
            "reasons": dict(self.reasons),
            "defects": dict(self.defects),
        }


def validate_interval(
    conn: psycopg.Connection, interval: Interval, *, batch_size: int = BATCH_SIZE
) -> ValidateResult:
    """Replace the interval's staged attempts and rejections with a fresh verdict on its landing."""
    result = ValidateResult()
    params = interval_params(interval)
    with conn.transaction(), conn.cursor() as writer:
        lock_day(writer, interval)
        writer.execute(sql("delete_staged"), params)
        writer.execute(sql("delete_rejections"), params)
        with conn.cursor(name="raw_attempts_reader") as reader:
            reader.execute(sql("select_raw"), params)
            while batch := reader.fetchmany(batch_size):
                _stage_batch(writer, batch, result)
    log.info(
        "validate %s: %d checked, %d valid (%d flagged), %d rejected; reasons %s; defects %s",
        interval,
        result.checked,
        result.valid,
        sum(result.defects.values()),
        result.rejected,
        dict(result.reasons),
        dict(result.defects),
    )
    return result


def _stage_batch(writer: psycopg.Cursor, batch: list[tuple], result: ValidateResult) -> None:
    attempts: list[tuple] = []
    rejections: list[tuple] = []
    for window_start, window_end, position, record_json in batch:
        verdict = validate_record(json.loads(record_json), window_start, window_end)
        if isinstance(verdict, Attempt):
            attempts.append(
                (
                    window_start,
                    position,
                    verdict.user_id,
                    verdict.oauth_consumer_key,
                    verdict.lis_result_sourcedid,
                    verdict.lis_outcome_service_url,
                    verdict.is_correct,
                    verdict.attempt_type,
                    verdict.created_at,
                    list(verdict.defects),
                )
            )
            result.defects.update(defect.value for defect in verdict.defects)
        else:
            rejections.append((window_start, window_end, position, record_json, list(verdict.reasons)))
            result.reasons.update(reason.value for reason in verdict.reasons)
    _copy(writer, sql("copy_staged_attempts"), attempts)
    _copy(writer, sql("copy_staged_rejections"), rejections)
    result.checked += len(batch)
    result.valid += len(attempts)
    result.rejected += len(rejections)


def _copy(cursor: psycopg.Cursor, statement: str, rows: list[tuple]) -> None:
    if rows:
        with cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
