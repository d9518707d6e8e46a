"""Stage 2: judge every landed record of an interval; stage attempts and rejections.

Records are read in batches through a server-side cursor and written back with COPY, so
memory holds one batch whatever the day's volume. The output goes to staging tables that
``load`` publishes; every landed record ends in exactly one of them. Attempts are written to
their COPY as they are judged, so that the server inserts them meanwhile, on another core.
The verdict is recorded in ``staging_batches`` against the landing it judged (extract's
``landing_batches`` row), which is how load tells a current staging from a stale one. The
staging tables are partitioned by day, like the landing (see ``partitions``).

This stage is pure Python per record, so its hot loop is kept lean: records are read with a
binary cursor (no timestamp text to parse), decoded with msgspec (about 3x faster than
``json.loads``, and falling back to it for what msgspec refuses), judged against their window
converted to UTC once per window (see :func:`_stage_batch`), and written with binary COPY whose
column types are declared once (psycopg then neither looks up a dumper per value nor formats
text: a quarter of the client CPU of a text COPY).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec
import psycopg

from include.common.failures import PermanentFailure
from include.common.intervals import Interval
from include.learning_platform.partitions import STAGING, create_day_partitions, require_day_partitions
from include.learning_platform.rules import Attempt, BoundaryCopy, Reason, Rejection, validate_record
from include.learning_platform.warehouse import interval_params, lock_day, open_binary_copy, sql

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


class NothingLanded(PermanentFailure):
    """No extract has landed the interval: there is nothing to validate until one does."""


class LandingAltered(PermanentFailure):
    """``raw_attempts`` holds another number of records than extract recorded landing: only a
    new extract gives a landing whose count is known."""


@dataclass(slots=True)
class ValidateResult:
    checked: int = 0
    valid: int = 0
    flagged: int = 0  # valid records with at least one defect
    rejected: int = 0
    boundary_copies: int = 0  # records the next window owns (see rules.BoundaryCopy)
    reasons: Counter[str] = field(default_factory=Counter)
    defects: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        return {
            "checked": self.checked,
            "valid": self.valid,
            "flagged": self.flagged,
            "rejected": self.rejected,
            "boundary_copies": self.boundary_copies,
            "reasons": dict(self.reasons),
            "defects": dict(self.defects),
        }


def validate_interval(
    conn: psycopg.Connection, interval: Interval, *, batch_size: int = BATCH_SIZE
) -> ValidateResult:
    """Replace the interval's staged attempts and rejections with a fresh verdict on its landing."""
    result = ValidateResult()
    params = interval_params(interval)
    create_day_partitions(conn, STAGING, interval)
    with conn.transaction(), conn.cursor() as writer:
        lock_day(writer, interval)
        require_day_partitions(writer, STAGING, interval)
        landing = writer.execute(sql("select_landing_batch"), params).fetchone()
        if landing is None:
            raise NothingLanded(
                f"{interval}: no landing is recorded for this interval (never extracted, or removed "
                "since); clear this run from `extract` (Clear on the extract task, with downstream tasks)"
            )
        landing_id, landed = landing
        writer.execute(sql("delete_staged"), params)
        writer.execute(sql("delete_rejections"), params)
        with conn.cursor(name="raw_attempts_reader", binary=True) as reader:
            reader.execute(sql("select_raw"), params)
            while batch := reader.fetchmany(batch_size):
                _stage_batch(writer, batch, result)
        if result.checked != landed:
            raise LandingAltered(
                f"{interval}: extract landed {landed} records but {result.checked} are in raw_attempts "
                "(the landing was changed by hand?); clear this run from `extract` to land the day again"
            )
        writer.execute(
            sql("replace_staging_batch"),
            {
                **params,
                "landing_id": landing_id,
                "checked": result.checked,
                "valid": result.valid,
                "flagged": result.flagged,
                "rejected": result.rejected,
                "boundary_copies": result.boundary_copies,
            },
        )
    log.info(
        "validate %s: %d checked, %d valid (%d flagged), %d rejected, %d boundary copies; reasons %s; "
        "defects %s",
        interval,
        result.checked,
        result.valid,
        result.flagged,
        result.rejected,
        result.boundary_copies,
        dict(result.reasons),
        dict(result.defects),
    )
    return result


def _stage_batch(writer: psycopg.Cursor, batch: list[tuple], result: ValidateResult) -> None:
    """Judge a batch, writing each attempt to its COPY as soon as it is judged.

    The server then inserts the rows it has while the next records are judged, on another core;
    sent after the batch, they would be waited for: a third of the stage's wall time. Rejections
    (about one record in a hundred) follow the batch, as only one COPY can be open at a time.
    """
    rejections: list[tuple] = []
    boundary_copies = 0
    landed_window = None
    with open_binary_copy(writer, "copy_staged_attempts", _STAGED_ATTEMPT_TYPES) as attempts:
        for row_start, row_end, position, record_json in batch:
            # The window in UTC, created_at's time zone: datetimes of different tzinfo objects
            # compare through utcoffset() calls, a fifth of the cost of judging a record. Rows
            # come window by window (ordered by window_start): one conversion per window.
            if (row_start, row_end) != landed_window:
                landed_window = row_start, row_end
                window_start, window_end = row_start.astimezone(UTC), row_end.astimezone(UTC)
            verdict = judge_landed_record(record_json, window_start, window_end)
            if isinstance(verdict, Attempt):
                attempts.write_row(
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
                if verdict.defects:
                    result.flagged += 1
                    result.defects.update(defect.value for defect in verdict.defects)
            elif isinstance(verdict, BoundaryCopy):
                boundary_copies += 1
            else:
                rejections.append((window_start, window_end, position, record_json, list(verdict.reasons)))
                result.reasons.update(reason.value for reason in verdict.reasons)
    if rejections:
        with open_binary_copy(writer, "copy_staged_rejections", _STAGED_REJECTION_TYPES) as copy:
            for row in rejections:
                copy.write_row(row)
    result.checked += len(batch)
    result.valid += len(batch) - len(rejections) - boundary_copies
    result.rejected += len(rejections)
    result.boundary_copies += boundary_copies


def judge_landed_record(
    text: str, window_start: datetime, window_end: datetime
) -> Attempt | Rejection | BoundaryCopy:
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
