"""The values the CSV import's stages hand each other: files, dialects, columns, chunks, rows.

Reading (discover, infer, plan, read) and writing (prepare, import, publish) are separate
modules that meet only here, so each is tested without the other. Everything here is small and
plain: the bulk of the data never leaves the reading and writing code (it flows from the source
straight into PostgreSQL's COPY); what crosses a task boundary is stored in the pipeline's
ledger tables, never in XCom.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

# A rejected line keeps at most this many characters of its text: enough to find and read it,
# bounded so that a garbage file cannot fill the reject table.
RAW_TEXT_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One CSV file of the drop as discovery saw it, or one member of a ``.zip`` in the drop."""

    # ``file:///abs/path.csv`` or ``s3://bucket/key.csv``; for a zip member, the archive's URL.
    url: str
    # The member's path inside the archive; None for a plain file.
    member: str | None
    # Bytes of CSV text (a member's uncompressed size).
    size: int
    # What changes when the content changes: an S3 ETag, or a local file's content digest; for a
    # member, the archive's fingerprint plus the member's CRC-32.
    fingerprint: str

    @property
    def name(self) -> str:
        """How logs, rejects and the asset event name the file."""
        return f"{self.url}!{self.member}" if self.member else self.url


class ColumnType(StrEnum):
    """The types inference chooses from, narrowest first within each family.

    Numbers widen ``integer → bigint → numeric``, and any disagreement ends in ``text``, which
    every value fits. The value is PostgreSQL's name of the type.
    """

    BOOLEAN = "boolean"
    INTEGER = "integer"
    BIGINT = "bigint"
    NUMERIC = "numeric"
    DATE = "date"
    TIMESTAMP = "timestamp"
    TIMESTAMPTZ = "timestamptz"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class Dialect:
    """How a file is written: what :mod:`csv` needs to read it, and its text encoding."""

    delimiter: str = ","
    quotechar: str = '"'
    encoding: str = "utf-8"
    header: bool = True
    # Backslash-style escaping instead of doubled quotes; never detected, only set by the user. A
    # file with an escape character cannot be split by counting quotes, so it is read as one chunk.
    escapechar: str | None = None


@dataclass(frozen=True, slots=True)
class Column:
    """A destination column: a safe SQL identifier, the header it came from, its type."""

    name: str
    header: str
    type: ColumnType


@dataclass(frozen=True, slots=True)
class Chunk:
    """A line-aligned byte range of one file, imported by one mapped task in one transaction.

    ``start`` is where the chunk's first record begins (after the header for the first chunk),
    ``end`` where the last one ends (exclusive; None: the end of the file). ``first_line`` is the
    physical line number (1-based, counting the header) of the chunk's first record, so that
    every row and reject names the line a person finds in an editor.

    A file read in one piece (a zip member, a small file, one that cannot be split) is one chunk
    from byte 0, line 1: it begins with the header, if the file has one, and the reader skips it.
    """

    file: SourceFile
    number: int
    start: int
    end: int | None
    first_line: int


@dataclass(frozen=True, slots=True)
class FileSchema:
    """How one file of the drop is read: its dialect and the destination column of each field.

    ``columns`` has one entry per field of the file's records, in the file's order (a subset of
    the table's columns: a column the file lacks is NULL for its rows). ``Row.values`` follow it.
    """

    file: SourceFile
    dialect: Dialect
    columns: tuple[Column, ...]


class RejectReason(StrEnum):
    """Why a line (or a whole file) was not imported; stored verbatim in the reject table."""

    WRONG_FIELD_COUNT = "wrong_field_count"
    TYPE_MISMATCH = "type_mismatch"
    INVALID_ENCODING = "invalid_encoding"
    UNTERMINATED_QUOTE = "unterminated_quote"
    EMPTY_FILE = "empty_file"
    HEADER_MISMATCH = "header_mismatch"
    # A line longer than the reader holds in memory: almost always a quote opened and never closed.
    LINE_TOO_LONG = "line_too_long"
    UNREADABLE_FILE = "unreadable_file"


class Row(NamedTuple):
    """One record to import: its physical line and a value per destination column of its file.

    ``values`` are in the order of the file's columns (see the plan), each already checked to fit
    its column's type and written the way PostgreSQL's input for that type reads it without
    depending on the session's settings (ISO dates, ``true``/``false``); None is SQL NULL.

    A named tuple, not a frozen dataclass like its neighbours: one is made per line of a 100 GB
    drop, and a frozen dataclass's ``__init__`` cost more than converting the line's values.
    """

    line: int
    values: tuple[str | None, ...]


@dataclass(frozen=True, slots=True)
class Reject:
    """A line, or a whole file (``line`` None), that was not imported, and why."""

    line: int | None
    reason: RejectReason
    # The destination column whose value did not fit; None when the line as a whole was bad.
    column: str | None
    # The line's text as read (at most RAW_TEXT_LIMIT characters; undecodable bytes escaped).
    raw: str
    # A sentence for the person reading the reject table: what was expected, what was found.
    detail: str
    # The last physical line of a record that spans several (a quoted newline); None: ``line``.
    last_line: int | None = None
