"""Stage 2: judge every landed record of an interval; stage attempts and rejections.

Records are read in batches through a server-side cursor and written back with COPY, so
memory holds one batch whatever the day's volume. The output goes to staging tables that
``load`` publishes; every landed record ends in exactly one of them.

This stage is pure Python per record, so its hot loop is kept lean: records are decoded with
msgspec (about 3x faster than ``json.loads``, and falling back to it for what msgspec refuses),
and written with binary COPY whose column types are declared once (psycopg then neither looks
up a dumper per value nor formats text: a quarter of the client CPU of a text COPY).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import msgspec
import psycopg

from include.common.intervals import Interval
from include.learning_platform.rules import Attempt, Reason, Rejection, validate_record
from include.learning_platform.warehouse import interval_params, lock_day, sql

log = logging.getLogger(__name__)

BATCH_SIZE = 20_000

_JSON_DECODER = msgspec.json.Decoder()
# The columns of copy_staged_attempts.sql and copy_staged_rejections.sql, in their order.
_STAGED_ATTEMPT_TYPES = (
    "timestamptz",
    "int4",
    "text",
    "text",
    "text",
    "text",
    "bool",
    "text",
    "timestamptz",
    "text[]",
)
_STAGED_REJECTION_TYPES = ("timestamptz", "timestamptz", "int4", "text", "text[]")


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
        verdict = judge_landed_record(record_json, window_start, window_end)
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
    _copy(writer, sql("copy_staged_attempts"), _STAGED_ATTEMPT_TYPES, attempts)
    _copy(writer, sql("copy_staged_rejections"), _STAGED_REJECTION_TYPES, rejections)
    result.checked += len(batch)
    result.valid += len(attempts)
    result.rejected += len(rejections)


def judge_landed_record(text: str, window_start: datetime, window_end: datetime) -> Attempt | Rejection:
    """The verdict on one landed record's JSON text, fetched for ``[window_start, window_end)``."""
    try:
        record = decode_record(text)
    except (ValueError, RecursionError):
        # Landed verbatim by extract (see include.common.json_stream); kept, with its reason.
        return Rejection((Reason.UNREADABLE_JSON,))
    return validate_record(record, window_start, window_end)


def decode_record(text: str) -> object:
    """``json.loads(text)``, faster: the same value for every JSON text the landing can hold."""
    try:
        return _JSON_DECODER.decode(text)
    except msgspec.DecodeError:
        # What msgspec refuses and the standard library reads: NaN and Infinity, numbers beyond
        # a float (1e400), lone surrogate escapes. Rare, and judged exactly as before.
        return json.loads(text)


def _copy(cursor: psycopg.Cursor, statement: str, types: tuple[str, ...], rows: list[tuple]) -> None:
    if rows:
        with cursor.copy(statement) as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)
