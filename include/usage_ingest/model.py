"""The values the usage ingest's parts hand each other: files, byte ranges, batches, bad lines.

Reading (finding finished files, fingerprinting and splitting them, parsing lines into batches)
and the store (claims, checkpoints, totals, quarantine) are separate modules that meet only here,
so each is tested without the other. Nothing here is bulk data except a :class:`Batch`'s two
arrays, which are bounded by the batch limits and go from the parser straight into one
transaction of the store; what crosses a task boundary is a row of the store's ledger, never XCom.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import numpy as np

# A quarantined line keeps at most this many bytes of its text: enough to find and read it,
# bounded so that a garbage file cannot fill the quarantine.
RAW_TEXT_LIMIT = 1000


class BadLineReason(StrEnum):
    """Why a line was quarantined instead of applied. A line has exactly one reason: the first
    rule it breaks, in this order."""

    EMPTY = "empty"  # nothing but an optional carriage return
    FIELD_COUNT = "not_two_fields"  # not exactly two fields separated by one space
    CONSUMER_NOT_INTEGER = "consumer_not_integer"
    AMOUNT_NOT_INTEGER = "amount_not_integer"
    NEGATIVE = "negative"  # a minus sign before the consumer id or the amount
    OUT_OF_RANGE = "out_of_range"  # an id or an amount beyond the limits in include.usage_ingest.lines


@dataclass(frozen=True, slots=True)
class BadLine:
    """One quarantined line: where it is, why, and its text (bounded, undecoded)."""

    line_number: int  # 1-based, in the whole file
    reason: BadLineReason
    raw: bytes  # at most RAW_TEXT_LIMIT bytes, without the line break


@dataclass(frozen=True, slots=True)
class FinishedFile:
    """A file in the incoming folder that its writer has finished, as the scan saw it."""

    path: str  # absolute
    name: str  # relative to the incoming folder, '/'-separated
    size: int
    mtime: datetime  # UTC; its hour is the period the file's usage is booked to
    # Identity of the open file: a rename keeps it, a rewrite under the same name does not.
    device: int
    inode: int


@dataclass(frozen=True, slots=True)
class ByteRange:
    """A line-aligned part of a file, processed by one mapped task: ``[start, end)`` in bytes.

    ``start`` is 0 or just after a line break, ``end`` is just after a line break or the file's
    size; ``first_line`` is the 1-based number of the line that starts at ``start``.
    """

    number: int  # 0-based, in file order
    start: int
    end: int
    first_line: int
    lines: int  # lines that start in the range (a last line without a line break counts)


@dataclass(frozen=True, slots=True)
class FilePlan:
    """What one read of a finished file found: its content digest, its lines, its ranges."""

    file: FinishedFile
    sha256: str  # hex
    lines: int
    ranges: tuple[ByteRange, ...]


@dataclass(frozen=True, slots=True)
class Batch:
    """The sums of consecutive lines ``[start, end)`` of a file: one transaction of the store.

    ``consumers`` is sorted ascending with no repeats, ``amounts`` the sum per consumer (int64);
    every line that starts in ``[start, end)`` is either summed (``applied_lines``) or in
    ``bad_lines``.
    """

    start: int
    end: int
    first_line: int
    applied_lines: int
    consumers: np.ndarray
    amounts: np.ndarray
    bad_lines: tuple[BadLine, ...]

    @property
    def lines(self) -> int:
        return self.applied_lines + len(self.bad_lines)

    @property
    def next_line(self) -> int:
        return self.first_line + self.lines


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """When a batch is committed: whichever limit is reached first (the seed's "batch limit",
    set per environment). ``max_consumers`` bounds the memory of the aggregation whatever the
    file; ``max_bytes`` bounds the work a crash can make us redo."""

    max_bytes: int
    max_consumers: int
