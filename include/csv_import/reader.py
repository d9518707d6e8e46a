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
Most records of a drop never come here: :mod:`~include.csv_import.plain` sends those already in
PostgreSQL's spelling to COPY as they are, and hands this reader the rest (and whole files whose
dialect PostgreSQL cannot be told). Still, a file of odd values all goes through this loop, so a
record costs one C call to split it
(:mod:`csv` on a decoding ``TextIOWrapper``), a length test and two list appends. The rest is
done a batch of :data:`BATCH_RECORDS` at a time and a column at a time: a column whose values
are all already in PostgreSQL's spelling (``42``, ``-1.5``, ``2024-01-31``, ``true``: nearly
every column of nearly every batch) is proven so by one regular expression over the joined
values, without a Python call per value; only other columns go through the converter value by
value. The batch's text is searched for bad bytes and NUL at once, and its rows are made by C
``map`` and ``zip``. Line numbers, raw text and the failing column are worked out only for the
records that are rejected. Memory: one batch of records and their lines. Measured: see the
README's section on the CSV import.
"""

from __future__ import annotations

import codecs
import csv
import io
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, BinaryIO

from include.csv_import.model import (
    RAW_TEXT_LIMIT,
    Chunk,
    FileSchema,
    Reject,
    RejectReason,
    Row,
)
from include.csv_import.types import NotOfType, already_canonical, converter

if TYPE_CHECKING:
    from _csv import _reader

# Records converted together: enough to pay for the per-column checks, few enough to keep memory
# flat (some 100 KB of text for usual lines) and rows flowing to COPY without a pause.
BATCH_RECORDS = 1024
# The longest line (and field) read; past it a line is rejected, not held.
MAX_LINE_CHARS = 4 * 1024 * 1024
_SURROGATE = re.compile("[\udc80-\udcff]")
_LINE_ENDS = ("\n", "\r")

# What the line source tells the loop about the record being read (rare, so a list is checked).
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
    in one piece) and it is skipped; any other chunk begins with a record. Results come in the
    order of their lines.
    """
    if csv.field_size_limit() < MAX_LINE_CHARS:
        # Process-wide, and only ever raised: 128 KiB by default is less than a real free-text field.
        csv.field_size_limit(MAX_LINE_CHARS)
    dialect = schema.dialect
    text = io.TextIOWrapper(
        stream, encoding=text_encoding(dialect.encoding, chunk.start), errors="surrogateescape", newline=""
    )
    lines = _Lines(chunk.first_line)
    records = csv.reader(
        lines.read(text),
        delimiter=dialect.delimiter,
        quotechar=dialect.quotechar,
        escapechar=dialect.escapechar,
        doublequote=True,
        strict=False,
    )
    try:
        yield from _read(records, lines, chunk, schema)
    finally:
        # The stream is the caller's to close, not the text wrapper's when it is collected.
        text.detach()


def _read(records: _reader, lines: _Lines, chunk: Chunk, schema: FileSchema) -> Iterator[Row | Reject]:
    batch = _Batch(schema, lines)
    keep, ends = batch.records.append, batch.ends.append
    width = len(schema.columns)
    trouble = lines.trouble
    skip_header = chunk.start == 0 and schema.dialect.header
    while True:
        try:
            # The loop every record of a 100 GB drop goes through: keep it this short.
            for fields in records:
                if len(fields) == width and not trouble and not skip_header:
                    keep(fields)
                    ends(records.line_num)
                    if len(batch.records) >= BATCH_RECORDS:
                        yield from batch.flush()
                    continue
                yield from batch.flush()
                reject = _odd_record(fields, records.line_num, lines, width, chunk, skip_header)
                skip_header = skip_header and not fields
                if reject is not None:
                    yield reject
            break
        except csv.Error as error:
            yield from batch.flush()
            first, last = lines.done + 1, records.line_num + lines.base
            yield _reject(first, last, RejectReason.LINE_TOO_LONG, lines.raw(first, last), str(error))
            lines.consumed(last)
            trouble.clear()
    yield from batch.flush()


class _Lines:
    """The physical lines read, kept from the first one not yet accounted for.

    Line numbers here are the file's (``first_line`` is the chunk's first). ``done`` is the last
    line that a row, reject or skip has accounted for; :meth:`raw` gives a record's text for its
    reject, and :meth:`consumed` lets go of lines once accounted for (memory: one batch).
    """

    def __init__(self, first_line: int) -> None:
        self.base = first_line - 1
        self.done = self.base
        self.kept: list[str] = []
        self.trouble: list[str] = []

    def read(self, text: io.TextIOWrapper) -> Iterator[str]:
        r"""The lines of ``text`` (ending in ``\n``, ``\r\n`` or ``\r``), then one empty line.

        The extra line tells an unterminated quote: when the input ends inside a quoted field,
        :mod:`csv` takes it into the field instead of reading it as a blank line.
        """
        readline, keep = text.readline, self.kept.append
        while line := readline(MAX_LINE_CHARS):
            if len(line) == MAX_LINE_CHARS and not line.endswith(_LINE_ENDS):
                self.trouble.append(_TOO_LONG)
                # The rest of the line is dropped unread: its record is rejected anyway.
                while (rest := readline(MAX_LINE_CHARS)) and not rest.endswith(_LINE_ENDS):
                    pass
                line = line[:RAW_TEXT_LIMIT] + "\n"
            keep(line)
            yield line
        self.trouble.append(_EOF)
        yield "\n"

    def raw(self, first: int, last: int) -> str:
        """The text of lines ``first`` to ``last``."""
        start = first - self.done - 1
        return "".join(self.kept[start : start + last - first + 1])

    def consumed(self, last: int) -> None:
        """Lines up to ``last`` are accounted for."""
        del self.kept[: last - self.done]
        self.done = last


def _odd_record(
    fields: list[str], line_num: int, lines: _Lines, width: int, chunk: Chunk, skip_header: bool
) -> Reject | None:
    """What a record that is not a plain one of the right width comes to; accounts for its lines."""
    first, last = lines.done + 1, line_num + lines.base
    trouble = lines.trouble
    raw = lines.raw(first, last)
    lines.consumed(last)
    if trouble:
        reject = (
            None
            if skip_header and fields and _EOF not in trouble
            else _troubled(fields, first, last, raw, trouble, chunk)
        )
        trouble.clear()
        return reject
    if not fields or skip_header:
        return None  # a blank line, or the header
    bad_text = _text_problem(raw)
    if bad_text is not None:
        return bad_text(first, last, raw)
    return _reject(
        first, last, RejectReason.WRONG_FIELD_COUNT, raw, f"expected {width} fields, found {len(fields)}"
    )


class _Batch:
    """Records of the right width, converted column by column when :data:`BATCH_RECORDS` are in.

    Each column of the batch is checked at once (:func:`~include.csv_import.types.already_canonical`);
    only a column that fails the check is converted value by value, and only a record with a
    value that does not fit becomes a reject. The batch's text is checked for undecodable bytes
    and NUL at once too. Rows are then made by C ``map`` and ``zip``.
    """

    def __init__(self, schema: FileSchema, lines: _Lines) -> None:
        self.schema = schema
        self.lines = lines
        self.types = [column.type for column in schema.columns]
        self.converters = [converter(column_type) for column_type in self.types]
        self.records: list[list[str]] = []
        # Each record's last line as csv counts them (from 1 at the chunk's start).
        self.ends: list[int] = []

    def flush(self) -> Iterable[Row | Reject]:
        """The batch's rows and rejects, in line order; the batch is empty afterwards."""
        records, ends = self.records, self.ends
        if not records:
            return ()
        lines = self.lines
        base = lines.base
        first_lines = list(map(operator.add, [lines.done - base, *ends[:-1]], repeat(base + 1)))
        last_lines = list(map(operator.add, ends, repeat(base)))
        rejects: dict[int, Reject] = {}
        if _text_problem(lines.raw(first_lines[0], last_lines[-1])) is not None:
            for position, (first, last) in enumerate(zip(first_lines, last_lines, strict=True)):
                raw = lines.raw(first, last)
                if (problem := _text_problem(raw)) is not None:
                    rejects[position] = problem(first, last, raw)
        columns: list[Sequence[str | None]] = list(zip(*records, strict=True))
        for index, column_type in enumerate(self.types):
            column = columns[index]
            if not already_canonical(column_type, column):  # type: ignore[arg-type]
                column = columns[index] = self._convert(index, column, rejects, first_lines, last_lines)  # type: ignore[arg-type]
            if "" in column:
                columns[index] = [value or None for value in column]
        if not rejects:
            yield from map(
                tuple.__new__, repeat(Row), zip(first_lines, zip(*columns, strict=True), strict=True)
            )
        else:
            for position, values in enumerate(zip(*columns, strict=True)):
                yield rejects[position] if position in rejects else Row(first_lines[position], values)
        lines.consumed(last_lines[-1])
        records.clear()
        ends.clear()

    def _convert(
        self,
        index: int,
        column: Sequence[str],
        rejects: dict[int, Reject],
        first_lines: list[int],
        last_lines: list[int],
    ) -> list[str | None]:
        convert = self.converters[index]
        converted: list[str | None] = []
        for position, value in enumerate(column):
            try:
                converted.append(convert(value))
            except NotOfType:
                converted.append(None)
                if position not in rejects:
                    first, last = first_lines[position], last_lines[position]
                    raw = self.lines.raw(first, last)
                    rejects[position] = _type_mismatch(first, last, self.records[position], self.schema, raw)
        return converted


def _text_problem(raw: str) -> Callable[[int, int, str], Reject] | None:
    """How to reject text with undecodable bytes or a NUL character; None if it has neither."""
    if "\x00" in raw:
        return lambda first, last, raw: _reject(
            first,
            last,
            RejectReason.INVALID_ENCODING,
            raw,
            "a NUL character, which PostgreSQL text cannot hold",
        )
    if not raw.isascii() and _SURROGATE.search(raw):
        return lambda first, last, raw: _reject(
            first,
            last,
            RejectReason.INVALID_ENCODING,
            raw,
            "bytes that are not valid in the file's encoding (shown as \\xNN): fix the file, or "
            "set the encoding if the whole file is in another one",
        )
    return None


def _troubled(
    fields: list[str], line: int, last_line: int, raw: str, trouble: list[str], chunk: Chunk
) -> Reject | None:
    """The reject for a record whose lines had a problem; None for the end-of-input marker itself."""
    if _EOF in trouble:
        if not fields and line == last_line and len(trouble) == 1:
            return None
        # The record took the end-of-input marker in: it was still open when the input ended.
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
                raw,
                f"a quoted field is never closed: the input ends inside it {where}",
            )
    if _TOO_LONG in trouble:
        return _reject(
            line,
            last_line,
            RejectReason.LINE_TOO_LONG,
            raw,
            f"a line longer than {MAX_LINE_CHARS} characters (an opening quote never closed?)",
        )
    problem = _text_problem(raw)
    return problem(line, last_line, raw) if problem is not None else None


def _type_mismatch(line: int, last_line: int, fields: list[str], schema: FileSchema, raw: str) -> Reject:
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
        raw,
        f"column {column.name} ({column.type}): {value[:100]!r} does not fit, {error}{others}",
        column=column.name,
    )


def _reject(
    line: int,
    last_line: int,
    reason: RejectReason,
    raw: str,
    detail: str,
    column: str | None = None,
) -> Reject:
    return Reject(
        line=line,
        reason=reason,
        column=column,
        raw=raw_text(raw),
        detail=detail,
        last_line=last_line if last_line > line else None,
    )


def raw_text(text: str) -> str:
    """A record's text for the reject table: no line end, undecodable bytes as ``\\xNN``, bounded."""
    text = text[: RAW_TEXT_LIMIT * 4].rstrip("\r\n")
    text = _SURROGATE.sub(lambda match: f"\\x{ord(match[0]) - 0xDC00:02x}", text).replace("\x00", "\\x00")
    return text[:RAW_TEXT_LIMIT]
