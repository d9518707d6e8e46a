"""The usage ingest's store: claims, per-batch checkpoints, totals, hourly usage, quarantine.

The decision: one PostgreSQL transaction per batch holds both the batch's sums and the
checkpoint that says they were added. :func:`apply_batch` locks its range's row, checks that the
range's ``committed_offset`` is exactly where the batch starts, adds the sums to
``consumer_totals`` and ``usage_hourly``, quarantines the batch's bad lines, and moves the
checkpoint to the batch's end, all before one COMMIT. A crash before the COMMIT applied nothing;
after it, the checkpoint moved with the sums. So a retried, restarted or duplicated task (a
worker thought lost and its retry, two runs on one file) applies every line exactly once, and no
lease, lock file or Airflow state is needed for correctness: they only save wasted work.

The price: every batch is a write transaction on the shared totals, whose rows it locks until
COMMIT, so concurrent batches that share consumers take turns there (they lock in consumer order,
so they wait, never deadlock). A batch bounds that cost: bigger batches mean fewer, longer
transactions and more work redone after a crash. The batch's arrays go in by one binary COPY and
one ``INSERT … SELECT`` per table, so the database does no per-line work and Python no per-row
work.

Identity is ``(name, sha256)``: the same content dropped again under the same name is a
duplicate, never applied again; a writer reusing a name for other content makes a new file. The
usage of a file is booked to the UTC hour of its arrival (its mtime when first claimed), kept on
its row so that every retry books the same hour.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import pairwise
from pathlib import Path

import numpy as np
import psycopg

from include.common.failures import PermanentFailure
from include.common.migrations import migrate
from include.common.postgres import read_sql
from include.usage_ingest.model import Batch, FilePlan, FinishedFile

log = logging.getLogger(__name__)

SCHEMA = "usage_ingest"
SQL_DIR = Path(__file__).parent / "sql"


def migrate_schema(conn: psycopg.Connection) -> list[str]:
    """Create or upgrade the ``usage_ingest`` schema; returns the migrations applied now."""
    return migrate(conn, SCHEMA, SQL_DIR / "migrations")


class ClaimOutcome(StrEnum):
    """What :func:`claim_file` found for a file, and so what the run does with it."""

    CLAIMED = "claimed"  # new: this run planned it and owns it now
    OURS = "ours"  # already claimed by this run (a retried claim): keep going
    TAKEN_OVER = "taken_over"  # claimed by another run whose lease expired: this run owns it now
    BUSY = "busy"  # claimed by another run whose lease is live: leave it to that run
    DUPLICATE = "duplicate"  # this content under this name is already done: never apply it again


@dataclass(frozen=True, slots=True)
class Claim:
    outcome: ClaimOutcome
    file_id: int
    # For DUPLICATE: where the done file was disposed to. None means it never was: the file in
    # the incoming folder *is* that done file, left behind by a crash between marking it done
    # and disposing of it; dispose of it and call record_disposal, not record_duplicate.
    disposed_to: str | None = None


@dataclass(frozen=True, slots=True)
class RangeKey:
    """What a mapped task gets: a few bytes, the rest is read from the store."""

    file_id: int
    range_no: int
    label: str  # "name [2/5]": the map index label in the UI


@dataclass(frozen=True, slots=True)
class RangeState:
    """A range's checkpoint, and the file as it was when planned (to detect a changed file)."""

    file_id: int
    range_no: int
    path: str
    name: str
    size: int
    mtime: datetime
    device: int
    inode: int
    arrival_hour: datetime
    committed_offset: int
    end_offset: int
    next_line: int
    done: bool

    @property
    def file(self) -> FinishedFile:
        """The file as it was when planned."""
        return FinishedFile(self.path, self.name, self.size, self.mtime, self.device, self.inode)


@dataclass(frozen=True, slots=True)
class FileAccount:
    """A claimed file's books: the lines planned against the lines its ranges committed."""

    file_id: int
    name: str
    path: str
    state: str  # 'claimed' | 'done'
    lines: int
    lines_applied: int
    lines_quarantined: int
    ranges: int
    ranges_done: int
    disposed_to: str | None

    @property
    def balanced(self) -> bool:
        return self.ranges_done == self.ranges and self.lines_applied + self.lines_quarantined == self.lines


class AccountMismatch(PermanentFailure):
    """A file's committed lines do not add up to its planned lines: it is not marked done."""


class CheckpointMismatch(PermanentFailure):
    """A batch does not continue its range's checkpoint: the reading side and the plan disagree."""


@dataclass(frozen=True, slots=True)
class RunSummary:
    files: int
    lines: int
    lines_applied: int
    lines_quarantined: int
    quarantined_by_reason: dict[str, int]
    duplicates: int
    consumers_in_store: int
    top_consumers: list[tuple[int, int]]  # (consumer_id, total in the store), largest first


# COPY's binary format (PostgreSQL docs, "COPY", "Binary Format"): a signature, flags and header
# extension length, then per row a field count and each field as its length and big-endian bytes,
# then -1. numpy lays out a batch's rows in that format in one pass, so no Python runs per row.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_TRAILER = b"\xff\xff"
_SUMS_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("consumer_size", ">i4"),
        ("consumer", ">i8"),
        ("amount_size", ">i4"),
        ("amount", ">i8"),
    ]
)


def claim_file(conn: psycopg.Connection, plan: FilePlan, *, run_id: str, lease: timedelta) -> Claim:
    """Register the planned file and its ranges for ``run_id``, or say who has it; one transaction.

    A known file keeps the ranges it was first planned with (its checkpoints are theirs), and its
    arrival hour; a run that holds it again, or takes it over, records where it is now.
    """
    _check_plan(plan)
    _require_no_transaction(conn, "claim_file")
    file = plan.file
    values = {
        "name": file.name,
        "sha256": plan.sha256,
        "path": file.path,
        "size": file.size,
        "mtime": file.mtime,
        "device": file.device,
        "inode": file.inode,
        "lines": plan.lines,
        "run_id": run_id,
        "lease": lease,
    }
    with conn.transaction(), conn.cursor() as cursor:
        inserted = cursor.execute(read_sql(SQL_DIR, "insert_file"), values).fetchone()
        if inserted is not None:
            (file_id,) = inserted
            cursor.execute(
                read_sql(SQL_DIR, "insert_ranges"),
                {
                    "file_id": file_id,
                    "range_nos": [r.number for r in plan.ranges],
                    "starts": [r.start for r in plan.ranges],
                    "ends": [r.end for r in plan.ranges],
                    "first_lines": [r.first_line for r in plan.ranges],
                    "lines": [r.lines for r in plan.ranges],
                },
            )
            return Claim(ClaimOutcome.CLAIMED, file_id)
        file_id, state, claimed_by, lease_live, disposed_to = cursor.execute(
            read_sql(SQL_DIR, "select_file_for_update"), values
        ).fetchone()
        if state == "done":
            return Claim(ClaimOutcome.DUPLICATE, file_id, disposed_to)
        if claimed_by == run_id:
            outcome = ClaimOutcome.OURS
        elif lease_live:
            return Claim(ClaimOutcome.BUSY, file_id)
        else:
            outcome = ClaimOutcome.TAKEN_OVER
            log.info(
                "%s: the lease of run %s expired; run %s takes the file over", file.name, claimed_by, run_id
            )
        cursor.execute(read_sql(SQL_DIR, "update_claim"), {**values, "file_id": file_id})
        return Claim(outcome, file_id)


def held_elsewhere(conn: psycopg.Connection, file: FinishedFile, *, run_id: str) -> bool:
    """Whether another run holds this very file under a live lease (so planning it is wasted work).

    Only an optimisation: :func:`claim_file` decides by ``(name, sha256)`` whatever this says. It
    spares a run re-reading, for its digest, a big file that an earlier run is still processing.
    """
    values = {
        "name": file.name,
        "path": file.path,
        "size": file.size,
        "mtime": file.mtime,
        "device": file.device,
        "inode": file.inode,
        "run_id": run_id,
    }
    with conn.transaction():
        (held,) = conn.execute(read_sql(SQL_DIR, "select_held_elsewhere"), values).fetchone()
    return held


def record_duplicate(
    conn: psycopg.Connection, plan: FilePlan, *, original_file_id: int, run_id: str, disposed_to: str
) -> None:
    """Record that ``run_id`` found an already-done file again and disposed of it; idempotent."""
    with conn.transaction():
        conn.execute(
            read_sql(SQL_DIR, "upsert_duplicate_drop"),
            {
                "name": plan.file.name,
                "sha256": plan.sha256,
                "size": plan.file.size,
                "mtime": plan.file.mtime,
                "file_id": original_file_id,
                "run_id": run_id,
                "disposed_to": disposed_to,
            },
        )


def claimed_ranges(conn: psycopg.Connection, run_id: str) -> list[RangeKey]:
    """The ranges not done yet of the files ``run_id`` holds, in file and range order."""
    with conn.transaction():
        rows = conn.execute(read_sql(SQL_DIR, "select_claimed_ranges"), {"run_id": run_id}).fetchall()
    return [
        RangeKey(file_id, range_no, f"{name} [{range_no + 1}/{ranges}]")
        for file_id, range_no, name, ranges in rows
    ]


def range_state(conn: psycopg.Connection, file_id: int, range_no: int) -> RangeState:
    """The range's checkpoint as committed now."""
    with conn.transaction():
        row = conn.execute(
            read_sql(SQL_DIR, "select_range_state"), {"file_id": file_id, "range_no": range_no}
        ).fetchone()
    if row is None:
        raise LookupError(f"range {range_no} of file {file_id} is not in {SCHEMA}.ranges")
    file_id, range_no, path, name, size, mtime, device, inode, hour, committed, end, next_line, done = row
    return RangeState(
        file_id,
        range_no,
        path,
        name,
        size,
        mtime,
        int(device),
        int(inode),
        hour,
        committed,
        end,
        next_line,
        done,
    )


def apply_batch(
    conn: psycopg.Connection,
    file_id: int,
    range_no: int,
    batch: Batch,
    *,
    committed_by: str,
    lease: timedelta,
) -> bool:
    """Add the batch to the store and move the range's checkpoint past it, in one transaction.

    Returns False, having changed nothing, when the range's checkpoint is not at ``batch.start``
    (another process committed this part already): the caller re-reads :func:`range_state`.
    """
    _require_no_transaction(conn, "apply_batch")
    # Laid out before the transaction: nothing is locked while numpy works.
    sums = _binary_copy(batch.consumers, batch.amounts)
    key = {"file_id": file_id, "range_no": range_no}
    with conn.transaction(), conn.cursor() as cursor:
        row = cursor.execute(read_sql(SQL_DIR, "select_range_for_update"), key).fetchone()
        if row is None:
            raise LookupError(f"range {range_no} of file {file_id} is not in {SCHEMA}.ranges")
        committed_offset, next_line, end_offset, end_line, arrival_hour, name = row
        if committed_offset != batch.start:
            log.info(
                "%s range %d: batch at byte %d is stale (checkpoint at %d), not applied",
                name,
                range_no,
                batch.start,
                committed_offset,
            )
            return False
        _check_continues(name, range_no, batch, next_line, end_offset, end_line)
        if len(batch.consumers):
            cursor.execute(read_sql(SQL_DIR, "set_batch_work_mem"))
            cursor.execute(read_sql(SQL_DIR, "create_batch_sums"))
            with cursor.copy(read_sql(SQL_DIR, "copy_batch_sums")) as copy:
                copy.write(sums)
            cursor.execute(read_sql(SQL_DIR, "add_consumer_totals"))
            cursor.execute(read_sql(SQL_DIR, "add_usage_hourly"), {"hour": arrival_hour})
        counts = {
            **key,
            "start": batch.start,
            "end": batch.end,
            "first_line": batch.first_line,
            "next_line": batch.next_line,
            "lines_applied": batch.applied_lines,
            "lines_quarantined": len(batch.bad_lines),
            "consumers": len(batch.consumers),
            "committed_by": committed_by,
        }
        cursor.execute(read_sql(SQL_DIR, "insert_batch"), counts)
        if batch.bad_lines:
            with cursor.copy(read_sql(SQL_DIR, "copy_quarantine")) as copy:
                for bad in batch.bad_lines:
                    copy.write_row(
                        (file_id, bad.line_number, bad.reason.value, bad.raw, range_no, batch.start)
                    )
        cursor.execute(read_sql(SQL_DIR, "advance_range"), counts)
        cursor.execute(read_sql(SQL_DIR, "renew_lease"), {"file_id": file_id, "lease": lease})
    return True


def files_claimed_by(conn: psycopg.Connection, run_id: str) -> list[FileAccount]:
    """The books of every file ``run_id`` holds (claimed or done), in file order."""
    return _accounts(conn, run_id=run_id)


def mark_done(conn: psycopg.Connection, file_id: int) -> FileAccount:
    """Mark a balanced file done; idempotent. Raises :class:`AccountMismatch` if it is not balanced."""
    with conn.transaction(), conn.cursor() as cursor:
        if cursor.execute(read_sql(SQL_DIR, "lock_file"), {"file_id": file_id}).fetchone() is None:
            raise LookupError(f"file {file_id} is not in {SCHEMA}.files")
        (account,) = _accounts(conn, file_id=file_id)
        if account.state == "done":
            return account
        if not account.balanced:
            raise AccountMismatch(
                f"usage file {account.name} (file_id {file_id}) does not balance: planned {account.lines} "
                f"lines, committed {account.lines_applied} applied + {account.lines_quarantined} "
                f"quarantined, {account.ranges_done} of {account.ranges} ranges done. It stays claimed "
                "and in place: clear the run's failed process_range tasks so they finish its ranges, "
                "then finish_files."
            )
        cursor.execute(
            read_sql(SQL_DIR, "update_file_done"),
            {
                "file_id": file_id,
                "lines_applied": account.lines_applied,
                "lines_quarantined": account.lines_quarantined,
            },
        )
        (done,) = _accounts(conn, file_id=file_id)
    log.info(
        "%s: done, %d lines applied, %d quarantined", done.name, done.lines_applied, done.lines_quarantined
    )
    return done


def record_disposal(conn: psycopg.Connection, file_id: int, disposed_to: str) -> None:
    """Record where a done file was moved to (archive path or marked name); idempotent."""
    with conn.transaction():
        row = conn.execute(
            read_sql(SQL_DIR, "update_disposal"), {"file_id": file_id, "disposed_to": disposed_to}
        ).fetchone()
    if row is None:
        raise LookupError(
            f"file {file_id} is not a done file in {SCHEMA}.files: it may not be disposed of yet"
        )


def run_summary(conn: psycopg.Connection, run_id: str, *, top: int = 10) -> RunSummary:
    """What ``run_id`` did, for its log line and its asset event.

    ``top_consumers`` are the largest totals in the store after the run: the store keeps sums per
    consumer and hour, not per file, and keeping them per file would double the run's writes.
    """
    accounts = files_claimed_by(conn, run_id)
    params = {"run_id": run_id, "top": top}
    with conn.transaction(), conn.cursor() as cursor:
        reasons = dict(cursor.execute(read_sql(SQL_DIR, "select_quarantine_reasons"), params).fetchall())
        (duplicates,) = cursor.execute(read_sql(SQL_DIR, "select_duplicate_count"), params).fetchone()
        (consumers,) = cursor.execute(read_sql(SQL_DIR, "select_store_consumers")).fetchone()
        leaders = cursor.execute(read_sql(SQL_DIR, "select_top_consumers"), params).fetchall()
    return RunSummary(
        files=len(accounts),
        lines=sum(a.lines for a in accounts),
        lines_applied=sum(a.lines_applied for a in accounts),
        lines_quarantined=sum(a.lines_quarantined for a in accounts),
        quarantined_by_reason=reasons,
        duplicates=duplicates,
        consumers_in_store=consumers,
        top_consumers=[(consumer, amount) for consumer, amount in leaders],
    )


def _accounts(
    conn: psycopg.Connection, *, run_id: str | None = None, file_id: int | None = None
) -> list[FileAccount]:
    with conn.transaction():
        rows = conn.execute(
            read_sql(SQL_DIR, "select_file_accounts"), {"run_id": run_id, "file_id": file_id}
        ).fetchall()
    return [FileAccount(*row) for row in rows]


def _binary_copy(consumers: np.ndarray, amounts: np.ndarray) -> bytes:
    """The (consumer, amount) pairs as one COPY ... (FORMAT BINARY) stream."""
    if consumers.shape != amounts.shape:
        raise ValueError(f"a batch has {consumers.shape} consumers but {amounts.shape} amounts")
    rows = np.empty(len(consumers), dtype=_SUMS_ROW)
    rows["fields"] = 2
    rows["consumer_size"] = rows["amount_size"] = 8
    rows["consumer"] = consumers
    rows["amount"] = amounts
    return _COPY_HEADER + rows.tobytes() + _COPY_TRAILER


def _check_continues(
    name: str, range_no: int, batch: Batch, next_line: int, end_offset: int, end_line: int
) -> None:
    """A batch at the checkpoint must also start at its line, and end within the range's bytes and
    lines, and at its last line when it ends the range: else the plan and the parsing disagree."""
    ends_range = batch.end == end_offset
    if (
        batch.first_line != next_line
        or not batch.start < batch.end <= end_offset
        or batch.next_line > end_line
        or (ends_range and batch.next_line != end_line)
    ):
        raise CheckpointMismatch(
            f"usage file {name} range {range_no}: a batch of bytes [{batch.start}, {batch.end}), lines "
            f"[{batch.first_line}, {batch.next_line}) does not continue the checkpoint at line {next_line} "
            f"of a range that ends at byte {end_offset}, line {end_line}; nothing was applied. Planning and "
            "parsing disagree about the file: keep it where it is and report it with the file."
        )


def _check_plan(plan: FilePlan) -> None:
    """Ranges that tile the file and count its lines, or the checkpoints would be meaningless."""
    ranges = plan.ranges
    tiles = [r.number for r in ranges] == list(range(len(ranges))) and all(
        a.end == b.start and b.first_line == a.first_line + a.lines for a, b in pairwise(ranges)
    )
    bounds = (
        (ranges[0].start, ranges[0].first_line, ranges[-1].end) == (0, 1, plan.file.size) if ranges else True
    )
    if not (tiles and bounds and sum(r.lines for r in ranges) == plan.lines):
        raise ValueError(f"the plan of {plan.file.name} does not tile the file: {plan}")


def _require_no_transaction(conn: psycopg.Connection, what: str) -> None:
    # Inside a caller's transaction, "one transaction" would be a savepoint: the caller's later
    # rollback could undo sums whose checkpoint the caller believes committed.
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise RuntimeError(f"{what} commits its own transaction: call it with no transaction open")
