"""Every record of a chunk as a :class:`Row` to import or a :class:`Reject` saying why not.

The promise: each data line of the chunk ends in exactly one ``Row`` or ``Reject`` (a record
that spans lines, by a quoted newline, is one of them for all its lines, named by its first
line, its last in ``Reject.last_line``). Blank lines are not records (Python's :mod:`csv`
writes an empty one-field row as ``""``, so a blank line never is one) and are skipped.

What is rejected, and how the rest goes on
------------------------------------------
* ``wrong_field_count``: not as many fields as the file's header (or first record) has.
* ``type_mismatch``: a value that its column's type refuses (the first such column is named;
  the check is the converter inference used, :mod:`~include.csv_import.types`).
* ``invalid_encoding``: bytes that are not text in the file's encoding, or a NUL character
  (which PostgreSQL text cannot hold). Bytes are decoded with ``surrogateescape``, so one bad
  byte costs its own record and nothing else; the raw text shows it as ``\\xNN``.
* ``unterminated_quote``: the input ended inside a quoted field. At the end of a chunk that is
  not its file's last, that means the plan split inside a record, which only a file whose quoting
  is not standard CSV can cause (see :mod:`~include.csv_import.planning`): its detail says so.
* ``line_too_long``: a line or field of more than :data:`MAX_LINE_CHARS` characters, nearly
  always a quote opened and never closed. The reader holds at most that much of a line, so
  memory stays bounded on any input.

Cost
----
This is the loop a 100 GB drop goes through, so the per-record work is: one C call to split
the record (:mod:`csv` on a decoding ``TextIOWrapper``), a length comparison, one C ``map``
calling each column's converter (picked once per chunk), and the ``Row``. Everything else
(line numbers for multi-line records, raw text, which column failed) is computed only for the
rare record that needs it. Measured: see the README's section on the CSV import.
"""

from __future__ import annotations

import codecs
import csv
import io
import operator
import re
from collections.abc import Iterator
from typing import BinaryIO

from include.csv_import.model import (
    RAW_TEXT_LIMIT,
    Chunk,
    ColumnType,
    FileSchema,
    Reject,
    RejectReason,
    Row,
)
from include.csv_import.types import NotOfType, converter

# The longest line (and field) read; past it a line is rejected, not held.
MAX_LINE_CHARS = 4 * 1024 * 1024
# Lines of a record kept for its raw text: enough for RAW_TEXT_LIMIT characters in practice.
_PENDING_LINES = 16
_SURROGATE = re.compile("[\udc80-\udcff]")
_LINE_ENDS = ("\n", "\r")

# What the line source tells the loop about the record being read (rare, so a list is checked).
_BAD_BYTES = "bad bytes"
_NUL = "nul"
_TOO_LONG = "too long"
_EOF = "eof"


def text_encoding(encoding: str, start: int) -> str:
    """The codec to decode a range from ``start`` with: a BOM is only at the start of a file."""
    if start > 0 and codecs.lookup(encoding).name == "utf-8-sig":
        return "utf-8"
    return encoding


def read_chunk(stream: BinaryIO, chunk: Chunk, schema: FileSchema) -> Iterator[Row | Reject]:
    """The rows and rejects of ``chunk``, read from ``stream`` (its bytes, as ``open_chunk`` gives them).

    A chunk that starts at byte 0 of a file with a header begins with that header (a file read
    in one piece) and it is skipped; any other chunk begins with a record.
    """
    if csv.field_size_limit() < MAX_LINE_CHARS:
        # Process-wide, and only ever raised: 128 KiB by default is less than a real free-text field.
        csv.field_size_limit(MAX_LINE_CHARS)
    dialect = schema.dialect
    text = io.TextIOWrapper(
        stream, encoding=text_encoding(dialect.encoding, chunk.start), errors="surrogateescape", newline=""
    )
    pending: list[str] = []
    trouble: list[str] = []
    records = csv.reader(
        _lines(text, pending, trouble),
        delimiter=dialect.delimiter,
        quotechar=dialect.quotechar,
        escapechar=dialect.escapechar,
        doublequote=True,
        strict=False,
    )
    columns = schema.columns
    converters = [converter(column.type) for column in columns]
    width = len(columns)
    base = chunk.first_line - 1
    skip_header = chunk.start == 0 and dialect.header
    last_line = 0
    call = operator.call
    has_text = any(column.type == ColumnType.TEXT for column in columns)
    # Row's own __new__ is Python code; the tuple's is C, and a Row is a named tuple.
    new_row = tuple.__new__
    while True:
        try:
            fields = next(records)
        except StopIteration:
            return
        except csv.Error as error:
            line, last_line = last_line + 1, records.line_num
            yield _reject(line + base, last_line + base, RejectReason.LINE_TOO_LONG, pending, str(error))
            pending.clear()
            trouble.clear()
            continue
        line, last_line = last_line + 1, records.line_num
        if trouble:
            if skip_header and fields and _EOF not in trouble:
                # A damaged header is inference's business (it named the columns), not a data line.
                skip_header = False
                reject = None
            else:
                reject = _troubled(fields, line + base, last_line + base, trouble, pending, chunk)
            trouble.clear()
            pending.clear()
            if reject is not None:
                yield reject
            continue
        if len(fields) == width:
            if skip_header:
                skip_header = False
            else:
                try:
                    values = tuple(map(call, converters, fields))
                    if has_text and "" in values:
                        values = tuple([value or None for value in values])
                    yield new_row(Row, (line + base, values))
                except NotOfType:
                    yield _type_mismatch(line + base, last_line + base, fields, schema, pending)
        elif fields:
            if skip_header:
                skip_header = False
            else:
                yield _reject(
                    line + base,
                    last_line + base,
                    RejectReason.WRONG_FIELD_COUNT,
                    pending,
                    f"expected {width} fields, found {len(fields)}",
                )
        pending.clear()


def _lines(text: io.TextIOWrapper, pending: list[str], trouble: list[str]) -> Iterator[str]:
    """The physical lines of ``text`` (``\\n``, ``\\r\\n`` or ``\\r``), noting what is wrong with them.

    After the last line comes one extra empty line: when the input ends inside a quoted field,
    :mod:`csv` takes it into the field instead of reading it as a blank line, which is how an
    unterminated quote is told from a complete last record.
    """
    readline = text.readline
    while line := readline(MAX_LINE_CHARS):
        if len(pending) < _PENDING_LINES:
            pending.append(line)
        if "\x00" in line:
            trouble.append(_NUL)
        if not line.isascii() and _SURROGATE.search(line):
            trouble.append(_BAD_BYTES)
        if len(line) == MAX_LINE_CHARS and not line.endswith(_LINE_ENDS):
            trouble.append(_TOO_LONG)
            # The rest of the line is dropped unread: the record is rejected anyway.
            while (rest := readline(MAX_LINE_CHARS)) and not rest.endswith(_LINE_ENDS):
                pass
            line = line[:RAW_TEXT_LIMIT] + "\n"
        yield line
    trouble.append(_EOF)
    yield "\n"


def _troubled(
    fields: list[str], line: int, last_line: int, trouble: list[str], pending: list[str], chunk: Chunk
) -> Reject | None:
    """The reject for a record whose lines had a problem; None for the end-of-input marker itself."""
    if _EOF in trouble:
        if not fields and line == last_line and len(trouble) == 1:
            return None
        # The record took the end-of-input marker in: it was still open when the input ended.
        if pending and pending[-1] == "\n":
            pending.pop()
        last_line -= 1
        if _TOO_LONG not in trouble:
            where = (
                "at the end of the file"
                if chunk.end is None
                else f"at the end of chunk {chunk.number} (byte {chunk.end}): the file's quoting is not "
                "standard CSV (a quote inside an unquoted field?), so it must be imported in one chunk"
            )
            return _reject(
                line,
                last_line,
                RejectReason.UNTERMINATED_QUOTE,
                pending,
                f"a quoted field is never closed: the input ends inside it {where}",
            )
    if _TOO_LONG in trouble:
        return _reject(
            line,
            last_line,
            RejectReason.LINE_TOO_LONG,
            pending,
            f"a line longer than {MAX_LINE_CHARS} characters (an opening quote never closed?)",
        )
    if _BAD_BYTES in trouble:
        return _reject(
            line,
            last_line,
            RejectReason.INVALID_ENCODING,
            pending,
            "bytes that are not valid in the file's encoding (shown as \\xNN): fix the file, or "
            "set the encoding if the whole file is in another one",
        )
    if _NUL in trouble:
        return _reject(
            line,
            last_line,
            RejectReason.INVALID_ENCODING,
            pending,
            "a NUL character, which PostgreSQL text cannot hold",
        )
    return None


def _type_mismatch(
    line: int, last_line: int, fields: list[str], schema: FileSchema, pending: list[str]
) -> Reject:
    failures = []
    for column, value in zip(schema.columns, fields, strict=True):
        try:
            converter(column.type)(value)
        except NotOfType as error:
            failures.append((column, value, error))
    column, value, error = failures[0]
    others = f"; {len(failures) - 1} more columns do not fit either" if len(failures) > 1 else ""
    return _reject(
        line,
        last_line,
        RejectReason.TYPE_MISMATCH,
        pending,
        f"column {column.name} ({column.type}): {value[:100]!r} does not fit, {error}{others}",
        column=column.name,
    )


def _reject(
    line: int,
    last_line: int,
    reason: RejectReason,
    pending: list[str],
    detail: str,
    column: str | None = None,
) -> Reject:
    return Reject(
        line=line,
        reason=reason,
        column=column,
        raw=raw_text("".join(pending)),
        detail=detail,
        last_line=last_line if last_line > line else None,
    )


def raw_text(text: str) -> str:
    """A record's text for the reject table: no line end, undecodable bytes as ``\\xNN``, bounded."""
    text = text[: RAW_TEXT_LIMIT * 4].rstrip("\r\n")
    text = _SURROGATE.sub(lambda match: f"\\x{ord(match[0]) - 0xDC00:02x}", text).replace("\x00", "\\x00")
    return text[:RAW_TEXT_LIMIT]
