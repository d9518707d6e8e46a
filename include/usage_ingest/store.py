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
from pathlib import Path

import psycopg

from include.common.failures import PermanentFailure
from include.common.migrations import migrate
from include.common.postgres import read_sql
from include.usage_ingest.model import Batch, FilePlan

log = logging.getLogger(__name__)

SCHEMA = "usage_ingest"
SQL_DIR = Path(__file__).parent / "sql"


def _sql(name: str) -> str:
    """The statement kept in ``sql/<name>.sql``."""
    return read_sql(SQL_DIR, name)


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


def claim_file(conn: psycopg.Connection, plan: FilePlan, *, run_id: str, lease: timedelta) -> Claim:
    """Register the planned file and its ranges for ``run_id``, or say who has it; one transaction."""
    raise NotImplementedError


def record_duplicate(
    conn: psycopg.Connection, plan: FilePlan, *, original_file_id: int, run_id: str, disposed_to: str
) -> None:
    """Record that ``run_id`` found an already-done file again and disposed of it; idempotent."""
    raise NotImplementedError


def claimed_ranges(conn: psycopg.Connection, run_id: str) -> list[RangeKey]:
    """The ranges not done yet of the files ``run_id`` holds, in file and range order."""
    raise NotImplementedError


def range_state(conn: psycopg.Connection, file_id: int, range_no: int) -> RangeState:
    """The range's checkpoint as committed now."""
    raise NotImplementedError


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
    raise NotImplementedError


def files_claimed_by(conn: psycopg.Connection, run_id: str) -> list[FileAccount]:
    """The books of every file ``run_id`` holds (claimed or done), in file order."""
    raise NotImplementedError


def mark_done(conn: psycopg.Connection, file_id: int) -> FileAccount:
    """Mark a balanced file done; idempotent. Raises :class:`AccountMismatch` if it is not balanced."""
    raise NotImplementedError


def record_disposal(conn: psycopg.Connection, file_id: int, disposed_to: str) -> None:
    """Record where a done file was moved to (archive path or marked name); idempotent."""
    raise NotImplementedError


def run_summary(conn: psycopg.Connection, run_id: str, *, top: int = 10) -> RunSummary:
    """What ``run_id`` did, for its log line and its asset event."""
    raise NotImplementedError
