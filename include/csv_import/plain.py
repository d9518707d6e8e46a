"""Records PostgreSQL can read as they are: checked a block at a time, sent to COPY untouched.

The careful reader (:mod:`~include.csv_import.reader`) parses every record in Python, which
holds an import to some 20 MB/s per core while ``COPY`` of the same file runs at 50. Yet nearly
every record of a real drop needs none of that care: it is RFC 4180 CSV in the file's dialect,
has the header's number of fields, and each value is already in the one spelling
:mod:`~include.csv_import.types` writes for its column (``42``, ``-1.5``, ``2024-01-31``,
``true``, any text). For such a record the careful reader hands PostgreSQL every field
unchanged, so the record's own bytes can go to ``COPY … (FORMAT csv)`` instead, with its
lineage (file id, line) put in front, and PostgreSQL parses it once. Such a record is *plain*.

How a block is checked, without a Python call per record
--------------------------------------------------------
* **Record ends**: with standard quoting, a line break ends a record exactly when an even
  number of quote bytes precede it (the planner cuts chunks by the same fact). NumPy finds the
  line breaks (``\\r\\n``, ``\\r``, ``\\n``, as the careful reader counts lines) and the quotes,
  and the parity at each break gives the record ends and each record's first line.
* **Plain or not**: one regular expression of the file's schema, run by RE2 over the block's
  records at once (PyArrow's ``match_substring_regex``): each field unquoted without quotes,
  or quoted with quotes doubled; the header's number of fields; each typed value canonical
  (:data:`~include.csv_import.types.CANONICAL`) or empty; no NUL, no byte the encoding lacks;
  a record shorter than the careful reader's longest line. Text is written as it is in both
  paths, empty text is NULL in both (``FORCE_NULL`` makes ``""`` NULL too).

Everything else goes through the careful reader, a run of consecutive such records at a time:
the header, blank lines, a wrong number of fields, a value to convert (`` 12 ``) or to reject,
stray quotes, invalid bytes. So both paths give the same rows and rejects, which a property test
holds them to. The parity is only a guess where quoting is not standard, so it is never trusted
alone: a plain record is checked whole by the expression, which admits standard quoting only,
and the careful reader must end a run of other records cleanly (not inside a quoted field, not
on an over-long line); if it does not, the rest of the chunk is read carefully from that run on.

PostgreSQL stays the final judge. A block it refuses (``2024-02-30``, bytes invalid in UTF-8
that RE2 let through) is read again carefully, whose rejects then name the line and the reason.

Where it applies: one-character ASCII delimiter and quote, no escape character, at least two
columns (a one-column file's blank line would look like a NULL), and an encoding PostgreSQL can
be told: UTF-8 (with or without BOM) and the single-byte code pages below. Other files are read
carefully whole. Memory: one block of :data:`BLOCK_BYTES` (plus a record that straddles two)
and its arrays; a record longer than :data:`~include.csv_import.reader.MAX_LINE_CHARS` is never
held whole, as the careful reader then reads on from it.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from include.csv_import.model import Chunk, FileSchema, Reject, RejectReason, Row
from include.csv_import.reader import MAX_LINE_CHARS, read_chunk
from include.csv_import.types import CANONICAL

# Read and checked at once: large enough that the per-block costs (compiling the expression, a
# COPY statement) vanish, small enough that a block's arrays stay a few tens of MB.
BLOCK_BYTES = 4 * 1024 * 1024
# Bytes compared at once when finding line breaks and quotes.
_WINDOW = 256 * 1024
# Arrow's default pool keeps freed blocks for reuse; the system's gives them back between blocks.
_POOL = pa.system_memory_pool()
# PostgreSQL's names of the encodings both sides read the same way (Python's codec names).
PG_ENCODINGS = {
    "utf-8": "UTF8",
    "utf-8-sig": "UTF8",
    "cp1252": "WIN1252",
    "iso8859-1": "LATIN1",
    "iso8859-15": "LATIN9",
}
# A careful run that ends so is not known to end where a record ends.
_OPEN_ENDED = (RejectReason.UNTERMINATED_QUOTE, RejectReason.LINE_TOO_LONG)
# Bytes held while looking for a record's end; past them the careful reader takes over.
_LONGEST_CARRY = 2 * MAX_LINE_CHARS
_LF, _CR = 0x0A, 0x0D
_BACKSLASH, _DOT = 0x5C, 0x2E


@dataclass(frozen=True, slots=True)
class CopyFormat:
    """How PostgreSQL is told to read a file's plain records (``COPY … FROM STDIN`` options)."""

    delimiter: str
    quote: str
    encoding: str


@dataclass(frozen=True, slots=True)
class PlainRecords:
    """A block's plain records, to COPY as they are with their lineage in front.

    ``records`` are the records' bytes, each with its own line end; ``first_lines`` the physical
    line each starts on. ``runs`` are the contiguous stretches of them in the chunk (a chunk of
    their own each, with ``data`` holding their bytes), so that PostgreSQL refusing the block
    can send exactly these records through the careful reader instead.
    """

    format: CopyFormat
    records: pa.Array
    first_lines: np.ndarray
    schema: FileSchema
    data: bytes
    # (start, end) in data and the chunk of each contiguous stretch of the records.
    runs: tuple[tuple[int, int, Chunk], ...]

    @property
    def rows(self) -> int:
        return len(self.records)

    @property
    def last_line(self) -> int:
        return int(self.first_lines[-1])

    def payload(self, file_id: int) -> memoryview:
        """The COPY input: ``<file id><delimiter><line><delimiter>`` and the record, for each."""
        delimiter = self.format.delimiter
        lines = pc.cast(pa.array(self.first_lines), pa.string(), memory_pool=_POOL)
        lineage = pc.binary_join_element_wise(
            f"{file_id}{delimiter}", lines, delimiter, "", memory_pool=_POOL
        )
        joined = pc.binary_join_element_wise(
            lineage.cast(self.records.type, memory_pool=_POOL),
            self.records,
            pa.scalar("", self.records.type),
            memory_pool=_POOL,
        )
        offsets = np.frombuffer(joined.buffers()[1], np.int64, count=len(joined) + 1)
        return memoryview(joined.buffers()[2])[offsets[0] : offsets[-1]]

    def careful(self) -> Iterator[Row | Reject]:
        """The same records through the careful reader: for a block PostgreSQL refused."""
        for begin, end, chunk in self.runs:
            yield from read_chunk(io.BytesIO(self.data[begin:end]), chunk, self.schema)


def copy_format(schema: FileSchema) -> CopyFormat | None:
    """How PostgreSQL reads the file's plain records; None when its dialect has none (read carefully)."""
    dialect = schema.dialect
    delimiter, quote = dialect.delimiter, dialect.quotechar
    encoding = PG_ENCODINGS.get(codecs.lookup(dialect.encoding).name)
    if (
        encoding is None
        or dialect.escapechar is not None
        or len(schema.columns) < 2
        or len(delimiter) != 1
        or len(quote or "") != 1
        or not (delimiter + quote).isascii()
        or delimiter == quote
        or {delimiter, quote} & {"\r", "\n", "\x00"}
    ):
        return None
    return CopyFormat(delimiter, quote, encoding)


def read_chunk_plain(
    stream: BinaryIO, chunk: Chunk, schema: FileSchema, *, block_bytes: int = BLOCK_BYTES
) -> Iterator[Row | Reject | PlainRecords]:
    """What :func:`~include.csv_import.reader.read_chunk` gives, with plain records as :class:`PlainRecords`.

    The stream is read to its end (which is what checks that the file did not change meanwhile).
    Items come in line order within a block; a block's plain records come after its other items.
    """
    format = copy_format(schema)
    if format is None:
        yield from read_chunk(stream, chunk, schema)
        return
    checker = _Checker(schema, format)
    carry, start, line = b"", chunk.start, chunk.first_line
    while True:
        block = stream.read(block_bytes)
        at_end = not block
        data = carry + block if carry else block
        if not data:
            return
        ends, lines = _record_ends(data, ord(format.quote), at_end)
        if at_end and (ends.size == 0 or ends[-1] < len(data)):
            # The chunk's last record: no line end after it, or inside a quote never closed.
            ends = np.append(ends, len(data))
            lines = np.append(lines, lines[-1] if lines.size else 0)
        if ends.size == 0:
            if len(data) <= _LONGEST_CARRY:
                carry = data
                continue
            # A record longer than the careful reader holds, or a quote never closed: the careful
            # reader reads on from here, as it would have read the whole chunk.
            yield from read_chunk(_prefixed(data, stream), _piece(chunk, start, None, line), schema)
            return
        careful_from = yield from checker.block(data, ends, lines, chunk, start, line, at_end)
        if careful_from is not None:
            offset, piece = careful_from
            yield from read_chunk(_prefixed(data[offset:], stream), piece, schema)
            return
        if at_end:
            return
        processed = int(ends[-1])
        carry = data[processed:]
        start += processed
        line += int(lines[-1])


class _Checker:
    """One file's expression, applied a block at a time."""

    def __init__(self, schema: FileSchema, format: CopyFormat) -> None:
        self.schema = schema
        self.format = format
        self.utf8 = format.encoding == "UTF8"
        self.pattern = record_pattern(schema, format, _undefined_bytes(schema.dialect.encoding))

    def block(
        self,
        data: bytes,
        ends: np.ndarray,
        lines: np.ndarray,
        chunk: Chunk,
        start: int,
        line: int,
        at_end: bool,
    ) -> Iterator[Row | Reject | PlainRecords]:
        """Yield the block's items; return where the careful reader must take over to the end, if it must."""
        count = ends.size
        offsets = np.empty(count + 1, np.int64)
        offsets[0] = 0
        offsets[1:] = ends
        buffers = [None, pa.py_buffer(offsets), pa.py_buffer(data)]
        records = (
            pa.LargeStringArray.from_buffers(count, buffers[1], buffers[2])
            if self.utf8
            else pa.LargeBinaryArray.from_buffers(pa.large_binary(), count, buffers)
        )
        plain = pc.match_substring_regex(records, self.pattern, memory_pool=_POOL).to_numpy(
            zero_copy_only=False
        )
        plain &= np.diff(offsets) < MAX_LINE_CHARS
        marks = _end_of_data_marks(data)
        plain[np.searchsorted(offsets, marks[marks < offsets[-1]], side="right") - 1] = False
        if start == 0:
            plain[0] = False  # the header, or a byte order mark: the careful reader's to skip
        first_lines = line + np.concatenate(([0], lines[:-1]))
        # Stretches of records alike: [bounds[i], bounds[i + 1]) are all plain or all not.
        bounds = np.concatenate(([0], np.flatnonzero(np.diff(plain)) + 1, [count]))
        runs: list[tuple[int, int, Chunk]] = []
        for first, last in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            begin, end = int(offsets[first]), int(offsets[last])
            reaches_end = at_end and last == count
            piece = _piece(
                chunk, start + begin, None if reaches_end else start + end, int(first_lines[first])
            )
            if plain[first]:
                runs.append((begin, end, piece))
                continue
            items = list(read_chunk(io.BytesIO(data[begin:end]), piece, self.schema))
            if not reaches_end and any(isinstance(i, Reject) and i.reason in _OPEN_ENDED for i in items):
                yield from self._plain(records, plain, first_lines, data, runs, upto=first)
                return begin, _piece(chunk, start + begin, None, int(first_lines[first]))
            yield from items
        yield from self._plain(records, plain, first_lines, data, runs, upto=count)
        return None

    def _plain(
        self,
        records: pa.Array,
        plain: np.ndarray,
        first_lines: np.ndarray,
        data: bytes,
        runs: list[tuple[int, int, Chunk]],
        upto: int,
    ) -> Iterator[PlainRecords]:
        chosen = plain[:upto]
        if not runs:
            return
        records = records.slice(0, upto)
        yield PlainRecords(
            self.format,
            records if chosen.all() else pc.filter(records, pa.array(chosen), memory_pool=_POOL),
            first_lines[:upto][chosen],
            self.schema,
            data,
            tuple(runs),
        )


def record_pattern(schema: FileSchema, format: CopyFormat, undefined: bytes = b"") -> str:
    """The RE2 expression a plain record of ``schema`` matches whole, its line end included."""
    delimiter, quote = _escaped(format.delimiter), _escaped(format.quote)
    never = "\\x00" + "".join(f"\\x{byte:02x}" for byte in undefined)
    unquoted = f"[^{delimiter}{quote}\\r\\n{never}]*"
    quoted = f"{quote}(?:[^{quote}{never}]|{quote}{quote})*{quote}"
    fields = []
    for column in schema.columns:
        canonical = CANONICAL.get(column.type)
        if canonical is None:
            fields.append(f"(?:{unquoted}|{quoted})")
        else:
            fields.append(f"(?:(?:{canonical})?|{quote}(?:{canonical})?{quote})")
    return "\\A" + delimiter.join(fields) + "(?:\\r\\n|\\r|\\n)?\\z"


def _escaped(character: str) -> str:
    return f"\\x{ord(character):02x}"


def _undefined_bytes(encoding: str) -> bytes:
    """The bytes a single-byte encoding has no character for (PostgreSQL might map them anyway)."""
    if codecs.lookup(encoding).name in ("utf-8", "utf-8-sig"):
        return b""
    undefined = bytearray()
    for byte in range(0x80, 0x100):
        try:
            bytes([byte]).decode(encoding)
        except UnicodeDecodeError:
            undefined.append(byte)
    return bytes(undefined)


def _record_ends(data: bytes, quote: int, at_end: bool) -> tuple[np.ndarray, np.ndarray]:
    """Where records end in ``data`` (exclusive offsets) and how many line breaks precede each end.

    A record ends at a line break after an even number of quote bytes. A CR as the last byte
    is not a break yet unless the input ends there: the next block may begin with its LF.
    """
    array = np.frombuffer(data, np.uint8)
    breaks, returns, quotes = (_positions(array, byte) for byte in (_LF, _CR, quote))
    if returns.size:
        following = returns + 1
        inside = following < array.size
        alone = np.ones(returns.size, bool)
        alone[inside] = array[following[inside]] != _LF
        if not at_end:
            alone[~inside] = False
        if alone.any():
            breaks = np.union1d(breaks, returns[alone])
    even = (np.searchsorted(quotes, breaks) & 1) == 0
    at = np.flatnonzero(even)
    return breaks[at] + 1, at + 1


def _end_of_data_marks(data: bytes) -> np.ndarray:
    """Where a line starts with ``\\.``: PostgreSQL may read it as the end of the data, even quoted."""
    array = np.frombuffer(data, np.uint8)
    at = _positions(array, _BACKSLASH)
    at = at[(at > 0) & (at + 1 < array.size)]
    return at[(array[at + 1] == _DOT) & ((array[at - 1] == _LF) | (array[at - 1] == _CR))]


def _positions(array: np.ndarray, byte: int) -> np.ndarray:
    """Where ``byte`` is in ``array``, compared a window at a time: no block-sized temporary."""
    found = [np.flatnonzero(array[at : at + _WINDOW] == byte) + at for at in range(0, array.size, _WINDOW)]
    return np.concatenate(found) if found else np.empty(0, np.int64)


def _piece(chunk: Chunk, start: int, end: int | None, first_line: int) -> Chunk:
    """Part of ``chunk`` as a chunk of its own (``end`` None: to the chunk's end)."""
    return Chunk(chunk.file, chunk.number, start, chunk.end if end is None else end, first_line)


class _Prefixed(io.RawIOBase):
    """``prefix``, then the rest of ``stream``: the careful reader goes on where the check stopped."""

    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        self._prefix = memoryview(prefix)
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._prefix:
            size = min(len(buffer), len(self._prefix))
            buffer[:size] = self._prefix[:size]
            self._prefix = self._prefix[size:]
            return size
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _prefixed(prefix: bytes, stream: BinaryIO) -> BinaryIO:
    return io.BufferedReader(_Prefixed(prefix, stream))
