"""Summing every 10th column of a CSV stream: the pipeline's hot loop.

The decision: the file is split into fields with NumPy on the raw bytes, a block (1 MiB) of
whole records at a time, and only the cells that are not plain numbers go through Python.
The reading process cuts the stream after the last line break of each block that is outside
quotes (an even number of quote characters before it); a block's delimiters and line breaks
are then found in two vectorised passes, and RFC 4180 quoting is honoured by pairing its quote
characters in order (an opening quote and the next one bound a quoted stretch; a doubled ``""``
inside closes and reopens it) and dropping the separators inside those stretches, so a quoted
field may hold the delimiter or a line break. The summed cells are judged all at once, each
read as the two unaligned 64-bit words that end where it ends, 8 bytes at a time (SWAR):
a sign, digits and at most one dot is a plain number, valued by three multiplications a word.
Sums are kept per (column, position of the dot) as sums of parts below 10^8, exact in a
float64 for a million cells, and combined in Python integers: no float ever holds a value,
nothing can overflow. Everything else (a quoted cell with odd content, an exponent, a long
number, junk) goes through :mod:`include.column_sums.cells`, the rules written plainly, which
a property test holds this module to. With ``processes`` > 1, blocks are summed by worker
processes and their partial sums merged in order; threads would not do, as NumPy keeps the
GIL in bincount, searchsorted and fancy indexing (measured: no gain from a second thread).

Why not DuckDB, the fastest engine at this (``bench/column_sums.py`` measures both): it reads
files and URLs, not the resumable stream the task reads S3 through (resume at the last byte
after a cut, detect a changed object by its ETag); it sums into DECIMAL(38, s), so it needs the
scale chosen before reading and rounds cells with more fraction digits; and it gives neither
the row nor the line of a non-numeric cell without a second pass.

Memory is bounded whatever the file: a few blocks in flight plus the longest record (at most
``max_record_bytes``, so a stray quote fails the file instead of reading all of it into
memory), and per block the separator positions (8 bytes per field) and the summed cells'
words. The price: the code is denser than a loop, and a quote inside an unquoted field
(``5"``), which RFC 4180 does not allow, opens a quoted stretch: the file then fails as
malformed, naming the line where the quote opened or the record that grew too long.
"""

from __future__ import annotations

import codecs
import multiprocessing
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from include.column_sums.cells import ExactSum, is_blank, parse_number, unquote
from include.column_sums.columns import Header, read_header
from include.column_sums.dialect import COMMA_SEPARATED, Dialect
from include.column_sums.model import Cell, ColumnSum, ColumnSums, RaggedRow
from include.column_sums.problems import EmptyFile, MalformedCsv, UnreadableEncoding

# Measured on a 72 MB file (three runs each): 1 MiB blocks take as little CPU as 4 MiB ones,
# 256 KiB ones 15% more, 16 MiB ones 30% more (their arrays no longer fit the CPU's caches).
CHUNK_BYTES = 1 << 20
MAX_RECORD_BYTES = 16 << 20
SAMPLES = 5
MAX_CELLS_SUMMED = 1 << 20  # at a time: sums of parts below 10^8 stay exact in a float
SAMPLE_BYTES = 100  # of a non-numeric cell shown in the result
# The longest cell on the vectorised path: a sign, 14 digits and a dot. Longer ones are rare
# and go through Python; wider matrices would cost every cell.
WIDTH = 16
NEWLINE, CARRIAGE_RETURN, DOT, MINUS, ZERO = (ord(c) for c in "\n\r.-0")
_WIDE_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def sum_columns(
    stream: BinaryIO,
    *,
    dialect: Dialect = COMMA_SEPARATED,
    chunk_bytes: int = CHUNK_BYTES,
    samples: int = SAMPLES,
    max_record_bytes: int = MAX_RECORD_BYTES,
    processes: int = 1,
) -> ColumnSums:
    """Every 10th column of the CSV ``stream`` summed, read once from where it stands.

    With ``processes`` > 1 the blocks are summed by that many worker processes while this one
    reads the stream and cuts it into blocks of whole records. Raises a
    :class:`~include.column_sums.problems.CsvProblem` for a file that cannot be summed (empty, no
    header, fewer than 10 columns, an encoding that cannot be read, an unclosed quote).
    """
    if chunk_bytes < 1 or max_record_bytes < 1 or processes < 1:
        raise ValueError(
            "chunk_bytes, max_record_bytes and processes must be positive, not "
            f"{chunk_bytes}, {max_record_bytes}, {processes}"
        )
    encoding = dialect.checked_encoding()
    summer: _Summer | None = None
    first_line = 1  # the header's line: after any blank lines
    records = _WholeRecords(stream, dialect.quote.encode(), chunk_bytes, max_record_bytes)
    unfinished: _Unfinished | None = None
    with _InOrder(processes) as blocks:
        try:
            for block in records:
                skip = 0
                if summer is None:
                    split = _Splitter(dialect).split(block)
                    summer = _Summer.from_header(split, block, dialect, encoding, samples, first_line)
                    if summer is None:  # blank lines only, so far
                        first_line += split.newlines
                        continue
                    skip = summer.skip
                for partial, newlines in blocks.run(
                    _Job(block, summer.header, dialect, encoding, samples, skip)
                ):
                    summer.merge(partial, newlines)
        except _Unfinished as error:
            unfinished = error
        if summer is not None:  # else no block was submitted
            for partial, newlines in blocks.rest():
                summer.merge(partial, newlines)
    if unfinished is not None:
        raise unfinished.problem(first_line if summer is None else summer.next_line)
    if summer is None:
        raise EmptyFile("the file is empty: it has no header and no rows; upload the complete file")
    return summer.result(records.bytes_read)


@dataclass(frozen=True, slots=True)
class _Job:
    """One block of whole records to sum, all a worker process needs."""

    block: bytes
    header: Header
    dialect: Dialect
    encoding: str
    samples: int
    skip: int  # records up to the header, in the header's block


def _sum_block(job: _Job) -> tuple[_Summer, int]:
    """The sums of one block (rows and lines counted from the block's start), and its line breaks."""
    split = _Splitter(job.dialect).split(job.block)
    partial = _Summer(job.header, job.dialect, job.encoding, job.samples, job.skip)
    partial.add(split, job.block, line_base=1)
    return partial, split.newlines


class _InOrder:
    """Runs block jobs here or on worker processes; their results in submission order, with at
    most two blocks a process in flight so that memory stays bounded."""

    def __init__(self, processes: int) -> None:
        self.limit = 2 * processes
        self.pending: deque[Future[tuple[_Summer, int]]] = deque()
        # spawn: a task's process may run threads, which a fork would copy in any state.
        self.pool = (
            ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))
            if processes > 1
            else None
        )

    def __enter__(self) -> _InOrder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def run(self, job: _Job) -> Iterator[tuple[_Summer, int]]:
        """Submit ``job``; the results that are due (here: at once)."""
        if self.pool is None:
            yield _sum_block(job)
            return
        self.pending.append(self.pool.submit(_sum_block, job))
        while len(self.pending) > self.limit:
            yield self.pending.popleft().result()

    def rest(self) -> Iterator[tuple[_Summer, int]]:
        while self.pending:
            yield self.pending.popleft().result()


class _Unfinished(Exception):
    """The stream ended inside a quoted field, or a record outgrew its limit: a MalformedCsv
    once the line it is on is known (after the blocks before it are counted)."""

    def __init__(self, tail: bytes, quote_at: int | None, max_record_bytes: int) -> None:
        self.tail, self.quote_at, self.max_record_bytes = tail, quote_at, max_record_bytes

    def problem(self, line_base: int) -> MalformedCsv:
        if self.quote_at is not None:
            line = line_base + self.tail.count(b"\n", 0, self.quote_at)
            return MalformedCsv(
                f"a quoted field opened on line {line} is never closed: close its quote, or "
                "quote the field and double the quotes inside it (RFC 4180)"
            )
        return MalformedCsv(
            f"the record starting on line {line_base} is longer than {self.max_record_bytes:,} "
            "bytes: most likely a quote opened and never closed (a quote inside an unquoted "
            "field is not allowed by RFC 4180): fix that record"
        )


class _WholeRecords:
    """The stream in blocks of whole records, each ending with a line break outside quotes (one
    is added after a last record without it); ``bytes_read`` counts what the stream gave."""

    def __init__(self, stream: BinaryIO, quote: bytes, chunk_bytes: int, max_record_bytes: int) -> None:
        self.stream, self.quote = stream, quote
        self.chunk_bytes, self.max_record_bytes = chunk_bytes, max_record_bytes
        self.bytes_read = 0

    def __iter__(self) -> Iterator[bytes]:
        carry = b""
        while True:
            data = _read(self.stream, self.chunk_bytes)
            final = len(data) < self.chunk_bytes  # a short read only at the end of the stream
            if not self.bytes_read:
                self.bytes_read = len(data)
                data = _without_bom(data)
            else:
                self.bytes_read += len(data)
            buf = carry + data if carry else data
            if final:
                if not buf:
                    return
                if not buf.endswith(b"\n"):
                    buf += b"\n"
                if _quote_parity(buf, self.quote):
                    raise _Unfinished(buf, _Splitter.open_quote(buf, self.quote), self.max_record_bytes)
                yield buf
                return
            cut = _last_record_end(buf, self.quote)
            if cut:
                yield buf[:cut]
            carry = buf[cut:]
            if len(carry) > self.max_record_bytes:
                raise _Unfinished(carry, None, self.max_record_bytes)


def _quote_parity(buf: bytes, quote: bytes, end: int | None = None) -> int:
    """1 if an odd number of quotes comes before ``end``: a quoted field is open there."""
    if buf.find(quote, 0, end) < 0:
        return 0
    arr = np.frombuffer(buf, dtype=np.uint8, count=len(buf) if end is None else end)
    return int(np.count_nonzero(arr == ord(quote))) % 2


def _last_record_end(buf: bytes, quote: bytes) -> int:
    """Just after the last line break of ``buf`` outside quotes (``buf`` starts a record); 0 if none."""
    end = buf.rfind(b"\n")
    if end < 0:
        return 0
    inside = _quote_parity(buf, quote, end)
    while inside:  # that line break is inside a quoted field: try the one before
        previous = buf.rfind(b"\n", 0, end)
        if previous < 0:
            return 0
        inside ^= buf.count(quote, previous, end) % 2
        end = previous
    return end + 1


def _read(stream: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes, fewer only at the end: a network stream's short reads are gathered."""
    parts, have = [], 0
    while have < size:
        part = stream.read(size - have)
        if not part:
            break
        parts.append(part)
        have += len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _without_bom(head: bytes) -> bytes:
    if head.startswith(codecs.BOM_UTF8):
        return head[len(codecs.BOM_UTF8) :]
    if head.startswith(_WIDE_BOMS):
        raise UnreadableEncoding(
            "the file is UTF-16 or UTF-32 (it starts with a byte-order mark): save or convert it "
            "as UTF-8 (for example with iconv) and submit it again"
        )
    return head


@dataclass(frozen=True, slots=True)
class _Block:
    """Where the fields of a block of whole records are."""

    separators: np.ndarray  # offsets of the delimiters and line breaks outside quotes
    ends: np.ndarray  # the index in `separators` of each record's line break
    newlines: int  # line breaks, quoted ones included: for line numbers
    quoted_newlines: np.ndarray  # offsets of the line breaks inside quoted fields


class _Splitter:
    def __init__(self, dialect: Dialect) -> None:
        self.delimiter, self.quote = ord(dialect.delimiter), ord(dialect.quote)
        self.quote_byte = dialect.quote.encode()

    @staticmethod
    def open_quote(buf: bytes, quote: bytes) -> int | None:
        """Where the quote that is still open at the end of ``buf`` is, if one is."""
        quotes = np.flatnonzero(np.frombuffer(buf, dtype=np.uint8) == ord(quote))
        return int(quotes[-1]) if len(quotes) % 2 else None

    def split(self, buf: bytes) -> _Block:
        """``buf``: whole records, the last one ending with a line break outside quotes."""
        arr = np.frombuffer(buf, dtype=np.uint8)
        is_separator = arr == self.delimiter
        is_separator |= arr == NEWLINE
        separators = np.flatnonzero(is_separator)
        quoted_newlines = separators[:0]
        if self.quote_byte in buf:
            # Quotes pair up in order: each opening quote with the next one. A doubled quote
            # inside a quoted field closes and reopens it, with nothing in between. Whole
            # records hold an even number of quotes.
            quotes = np.flatnonzero(arr == self.quote)
            bounds = np.searchsorted(separators, quotes)  # of the separators after each quote
            low = bounds[0::2]
            counts = bounds[1::2] - low
            quoted = int(counts.sum())
            if quoted:
                inside = np.repeat(low - (np.cumsum(counts) - counts), counts) + np.arange(quoted)
                keep = np.ones(len(separators), dtype=bool)
                keep[inside] = False
                quoted_separators = separators[inside]
                quoted_newlines = quoted_separators[arr[quoted_separators] == NEWLINE]
                separators = separators[keep]
        ends = np.flatnonzero(arr[separators] == NEWLINE)
        return _Block(separators, ends, len(ends) + len(quoted_newlines), quoted_newlines)


class _Summer:
    """The running sums of the summed columns, block after block."""

    def __init__(
        self, header: Header, dialect: Dialect, encoding: str, samples: int, skip: int, first_line: int = 1
    ) -> None:
        self.header = header
        self.encoding = encoding
        self.quote, self.quote_byte = ord(dialect.quote), dialect.quote.encode()
        self.samples = samples
        self.positions = np.array([column.index - 1 for column in header.columns], dtype=np.int64)
        count = len(header.columns)
        self.totals = [ExactSum() for _ in range(count)]
        self.numeric, self.blank, self.non_numeric = [0] * count, [0] * count, [0] * count
        self.found: list[list[Cell]] = [[] for _ in range(count)]
        self.rows = 0
        self.ragged = 0
        self.ragged_found: list[RaggedRow] = []
        self.skip = skip  # records of the first block up to the header, not data
        self.next_line = first_line  # where the next merged block starts

    @classmethod
    def from_header(
        cls, block: _Block, buf: bytes, dialect: Dialect, encoding: str, samples: int, first_line: int
    ) -> _Summer | None:
        """The summer of the file whose first non-blank record is in ``block``; None if it has none."""
        start = 0
        for number, end in enumerate(block.separators[block.ends].tolist(), start=1):
            record = buf[start:end].removesuffix(b"\r")
            if record:
                header = read_header(record, dialect, encoding)
                return cls(header, dialect, encoding, samples, skip=number, first_line=first_line)
            start = end + 1
        return None

    def add(self, block: _Block, buf: bytes, line_base: int) -> None:
        arr = np.frombuffer(buf, dtype=np.uint8)
        separators, ends = block.separators, block.ends
        lines = _Lines(line_base, separators[ends], block.quoted_newlines)
        firsts = np.concatenate(([0], ends[:-1] + 1))  # each record's first separator
        starts = np.concatenate(([0], separators[ends[:-1]] + 1))  # each record's first byte
        if self.skip:
            firsts, starts, ends = firsts[self.skip :], starts[self.skip :], ends[self.skip :]
            self.skip = 0
        fields = ends - firsts + 1
        lengths = separators[ends] - starts
        blank_line = (fields == 1) & ((lengths == 0) | ((lengths == 1) & (arr[starts] == CARRIAGE_RETURN)))
        if blank_line.any():
            keep = ~blank_line
            firsts, starts, ends, fields = firsts[keep], starts[keep], ends[keep], fields[keep]
        ragged = np.flatnonzero(fields != self.header.fields)
        self.ragged += len(ragged)
        for record in ragged[: max(0, self.samples - len(self.ragged_found))].tolist():
            row, line = self._where(record, starts, lines)
            self.ragged_found.append(RaggedRow(row, line, int(fields[record])))
        self._add_cells(arr, buf, separators, firsts, fields, starts, lines)
        self.rows += len(firsts)

    def _add_cells(
        self,
        arr: np.ndarray,
        buf: bytes,
        separators: np.ndarray,
        firsts: np.ndarray,
        fields: np.ndarray,
        starts: np.ndarray,
        lines: _Lines,
    ) -> None:
        """The summed cells of every record at once: plain numbers vectorised, the rest in Python."""
        count = len(self.totals)
        if len(fields) and fields.min() > self.positions[-1]:  # every record has every summed column
            record = np.repeat(np.arange(len(fields)), count)
            column = np.tile(np.arange(count), len(fields))
        else:
            present = fields[:, None] > self.positions
            record, column = np.nonzero(present)
            for index, missing in enumerate((len(fields) - present.sum(axis=0)).tolist()):
                self.blank[index] += missing  # from records too short to have the column
        at = firsts[record] + self.positions[column]
        begin, end = separators[at - 1] + 1, separators[at]
        # The last field of a CRLF record ends before its CR.
        end -= (
            (fields[record] == self.positions[column] + 1) & (end > begin) & (arr[end - 1] == CARRIAGE_RETURN)
        )
        quoted = (end - begin >= 2) & (arr[begin] == self.quote) & (arr[end - 1] == self.quote)
        first, stop = begin + quoted, end - quoted
        length = stop - first
        empty = length == 0
        plain = np.zeros(len(record), dtype=bool)
        candidates = np.flatnonzero((length >= 1) & (length <= WIDTH) & (stop >= WIDTH))
        if len(candidates):
            plain[candidates] = self._add_plain(arr, stop[candidates], length[candidates], column[candidates])
        for cell in np.flatnonzero(~plain & ~empty).tolist():
            self._add_slow(cell, buf, begin, end, column, record, starts, lines)
        for index, blanks in enumerate(np.bincount(column[empty], minlength=len(self.totals)).tolist()):
            self.blank[index] += blanks

    def _add_plain(
        self, arr: np.ndarray, stop: np.ndarray, length: np.ndarray, column: np.ndarray
    ) -> np.ndarray:
        """Sum the cells that are plain numbers; which ones were."""
        plain = np.zeros(len(stop), dtype=bool)
        for low in range(0, len(stop), MAX_CELLS_SUMMED):
            part = slice(low, low + MAX_CELLS_SUMMED)
            plain[part] = self._add_plain_part(arr, stop[part], length[part], column[part])
        return plain

    def _add_plain_part(
        self, arr: np.ndarray, stop: np.ndarray, length: np.ndarray, column: np.ndarray
    ) -> np.ndarray:
        numbers = _plain_numbers(arr, stop, length)
        key = column[numbers.plain] * (WIDTH + 1) + numbers.dot
        groups = len(self.totals) * (WIDTH + 1)
        cells = np.bincount(key, minlength=groups)
        # Each part below 10^8, at most MAX_CELLS_SUMMED cells: every sum is exact in a float.
        sign = 1.0 - 2.0 * numbers.negative
        parts = [
            np.bincount(key, weights=sign * part, minlength=groups).tolist()
            for number in (numbers.whole, numbers.fraction)
            for part in divmod(number, _HUNDRED_MILLION)
        ]
        for group in np.flatnonzero(cells).tolist():
            index, dot = divmod(group, WIDTH + 1)
            whole_high, whole_low, fraction_high, fraction_low = (int(part[group]) for part in parts)
            scale = WIDTH - 1 - dot if dot < WIDTH else 0
            units = (whole_high * 10**8 + whole_low) * 10**scale + fraction_high * 10**8 + fraction_low
            self.totals[index].add(units, -scale)
            self.totals[index].show_scale(scale)
            self.numeric[index] += int(cells[group])
        return numbers.plain

    def _add_slow(
        self,
        cell: int,
        buf: bytes,
        begin: np.ndarray,
        end: np.ndarray,
        column: np.ndarray,
        record: np.ndarray,
        starts: np.ndarray,
        lines: _Lines,
    ) -> None:
        index = int(column[cell])
        value = unquote(buf[begin[cell] : end[cell]], self.quote_byte)
        if is_blank(value):
            self.blank[index] += 1
            return
        number = parse_number(value)
        if number is not None:
            self.totals[index].add(*number)
            self.totals[index].show_scale(max(0, -number[1]))
            self.numeric[index] += 1
            return
        self.non_numeric[index] += 1
        if len(self.found[index]) < self.samples:
            row, line = self._where(int(record[cell]), starts, lines)
            shown = value[:SAMPLE_BYTES].decode(self.encoding, errors="backslashreplace")
            self.found[index].append(Cell(row, line, shown))

    def _where(self, record: int, starts: np.ndarray, lines: _Lines) -> tuple[int, int]:
        """The row (the header is row 1) and the line a record of this block starts on."""
        return self.rows + record + 2, lines.of(int(starts[record]))

    def merge(self, block: _Summer, newlines: int) -> None:
        """Add the next block's sums (its rows and lines counted from its start) and its line breaks."""
        line_base = self.next_line
        for index, total in enumerate(block.totals):
            self.totals[index].add(total.coefficient, total.exponent)
            self.totals[index].show_scale(total.scale)
            self.numeric[index] += block.numeric[index]
            self.blank[index] += block.blank[index]
            self.non_numeric[index] += block.non_numeric[index]
            room = self.samples - len(self.found[index])
            self.found[index] += [
                Cell(cell.row + self.rows, cell.line + line_base - 1, cell.value)
                for cell in block.found[index][:room]
            ]
        room = self.samples - len(self.ragged_found)
        self.ragged_found += [
            RaggedRow(row.row + self.rows, row.line + line_base - 1, row.fields)
            for row in block.ragged_found[:room]
        ]
        self.ragged += block.ragged
        self.rows += block.rows
        self.next_line += newlines

    def result(self, bytes_read: int) -> ColumnSums:
        return ColumnSums(
            rows=self.rows,
            header_columns=self.header.fields,
            bytes_read=bytes_read,
            columns=tuple(
                ColumnSum(
                    index=column.index,
                    name=column.name,
                    sum=self.totals[index].value(),
                    numeric=self.numeric[index],
                    blank=self.blank[index],
                    non_numeric=self.non_numeric[index],
                    non_numeric_samples=tuple(self.found[index]),
                )
                for index, column in enumerate(self.header.columns)
            ),
            ragged_rows=self.ragged,
            ragged_samples=tuple(self.ragged_found),
        )


@dataclass(frozen=True, slots=True)
class _Lines:
    """Line numbers in a block: it starts on line ``base``; where its line breaks are."""

    base: int
    record_breaks: np.ndarray
    quoted_breaks: np.ndarray

    def of(self, offset: int) -> int:
        """The line of the byte at ``offset``."""
        before = np.searchsorted(self.record_breaks, offset) + np.searchsorted(self.quoted_breaks, offset)
        return self.base + int(before)


@dataclass(frozen=True, slots=True)
class _PlainNumbers:
    plain: np.ndarray  # which cells are plain numbers; the rest are for plain ones only
    dot: np.ndarray  # the dot's lane in the right-aligned window, WIDTH if none
    negative: np.ndarray
    whole: np.ndarray  # the digits before the dot, as uint64
    fraction: np.ndarray  # the digits after it


def _plain_numbers(arr: np.ndarray, stop: np.ndarray, length: np.ndarray) -> _PlainNumbers:
    """The cells ``[stop - length, stop)`` (1 to WIDTH bytes, ``stop >= WIDTH``) read as numbers.

    Each cell is read as two unaligned little-endian uint64 words, the 16 bytes that end where
    it ends (its first byte in the lowest byte of ``high``), and judged 8 bytes at a time (SWAR):
    which bytes are digits, dots, minus signs, with exact per-byte tests that never carry into
    the next byte; the digits' value by three multiplications a word.
    """
    packed = np.ndarray((len(arr) - 7,), dtype="<u8", buffer=arr, strides=(1,))
    words = (packed[stop - WIDTH], packed[stop - 8])
    inside, first = _INSIDE[:, length], _FIRST[:, length]
    digit = [_bytes_below_ten(word ^ _REPEAT(ZERO)) & mask for word, mask in zip(words, inside, strict=True)]
    dot = [_zero_bytes(word ^ _REPEAT(DOT)) & mask for word, mask in zip(words, inside, strict=True)]
    minus = [_zero_bytes(word ^ _REPEAT(MINUS)) & mask for word, mask in zip(words, first, strict=True)]
    digits = np.bitwise_count(digit[0]) + np.bitwise_count(digit[1])
    dots = np.bitwise_count(dot[0]) + np.bitwise_count(dot[1])
    negative = (minus[0] | minus[1]) != 0
    plain = (digits > 0) & (dots <= 1) & (digits.astype(np.int64) + dots + negative == length)
    words, digit, dot = [w[plain] for w in words], [d[plain] for d in digit], [d[plain] for d in dot]
    # A flag is bit 7 of its byte: k = popcount(flag - 1) // 8 is its byte, 8 when there is none.
    dot_lane = np.where(
        dot[0] != 0, np.bitwise_count(dot[0] - _ONE) // 8, 8 + np.bitwise_count(dot[1] - _ONE) // 8
    ).astype(np.intp)
    value = [
        _eight_digits(word & ((flags >> np.uint64(7)) * np.uint64(0x0F)))
        for word, flags in zip(words, digit, strict=True)
    ]
    # The dot reads as a 0 digit: the part before it is above its place, the part after below.
    number = value[0] * np.uint64(10**8) + value[1]
    return _PlainNumbers(
        plain=plain,
        dot=dot_lane,
        negative=negative[plain],
        whole=number // _WHOLE_DIVISOR[dot_lane],
        fraction=number % _FRACTION_DIVISOR[dot_lane],
    )


def _REPEAT(byte: int) -> np.uint64:
    return np.uint64(int.from_bytes(bytes([byte]) * 8, "little"))


_ONE = np.uint64(1)
_HUNDRED_MILLION = np.uint64(10**8)
_LOW_SEVEN, _HIGH_BIT, _UP_TO_NINE = _REPEAT(0x7F), _REPEAT(0x80), _REPEAT(0x76)
# Per cell length (column) and word (row): the flag bits of the bytes inside the cell, and of its
# first byte. Lane k of the window is byte k % 8 of word k // 8.
_INSIDE = np.array(
    [
        [sum(0x80 << 8 * (k % 8) for k in range(WIDTH - n, WIDTH) if k // 8 == w) for n in range(WIDTH + 1)]
        for w in (0, 1)
    ],
    dtype=np.uint64,
)
_FIRST = np.array(
    [
        [0x80 << 8 * ((WIDTH - n) % 8) if n and (WIDTH - n) // 8 == w else 0 for n in range(WIDTH + 1)]
        for w in (0, 1)
    ],
    dtype=np.uint64,
)
# Lane `dot` holds the dot (WIDTH: none): the whole part is the number's digits above place
# WIDTH - 1 - dot (the dot's own, a 0), the fraction those below it.
_WHOLE_DIVISOR = np.array([10 ** (WIDTH - dot) for dot in range(WIDTH + 1)], dtype=np.uint64)
_FRACTION_DIVISOR = np.array([10 ** max(WIDTH - 1 - dot, 0) for dot in range(WIDTH + 1)], dtype=np.uint64)


def _zero_bytes(word: np.ndarray) -> np.ndarray:
    """Bit 7 of each byte of ``word`` that is 0 (exact: no carry crosses a byte)."""
    return ~(((word & _LOW_SEVEN) + _LOW_SEVEN) | word) & _HIGH_BIT


def _bytes_below_ten(word: np.ndarray) -> np.ndarray:
    """Bit 7 of each byte of ``word`` below 10 (exact: no carry crosses a byte)."""
    return ~(((word & _LOW_SEVEN) + _UP_TO_NINE) | word) & _HIGH_BIT


def _eight_digits(digits: np.ndarray) -> np.ndarray:
    """Eight digit values (0-9, one a byte, the first in the lowest) in a uint64 → their value.

    Multiplications wrap modulo 2^64 on purpose: each step combines neighbouring numbers,
    1-digit into 2-digit, 2 into 4, 4 into 8 (the trick from simdjson, as in usage_ingest).
    """
    v = (digits * np.uint64(2561)) >> np.uint64(8)
    v = ((v & np.uint64(0x00FF00FF00FF00FF)) * np.uint64(6553601)) >> np.uint64(16)
    return ((v & np.uint64(0x0000FFFF0000FFFF)) * np.uint64(42949672960001)) >> np.uint64(32)
