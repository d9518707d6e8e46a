"""Parsing a byte range of a usage file into batches of per-consumer sums: the pipeline's hot loop.

The decision: lines are parsed in bulk with NumPy on the raw bytes, a block (8 MiB) at a time,
and only lines that are not plainly good go through Python. Line breaks come from
``np.flatnonzero``; a line is plainly good when it has exactly one space, both fields are
non-empty ASCII digits and short enough for exact machine integers (ids up to 19 digits in
``uint64``, amounts up to 13), and the values are within the limits below. That check and the
digits-to-integer conversion work on small per-field matrices (a sliding window over the block,
gathered at each field's end), so there is no Python loop per line. Everything else, a bad line
or an odd good one (leading zeros beyond 19 digits), is classified by :func:`classify`, the line
rules written plainly, which gives the one reason of a bad line in the order of
``BadLineReason``. Sums per consumer are exact int64 (sort, then ``np.add.reduceat``); floats
never touch an amount. An amount is at most 10^12 and a batch is at most ``max_bytes`` (64 MiB,
under 17M lines), so no batch's sum can overflow int64; the totals in the store are
PostgreSQL bigints that raise on overflow instead of wrapping.

Why not one line at a time in Python: about 1-2M lines/s, i.e. 20-40 MB/s, a 5 GB file would
take minutes per core. Why not an SQL engine's CSV reader (DuckDB reads these files faster, see
``bench/usage_ingest_parse.py``): it does not give the one reason per bad line of our rules, nor
the byte offsets and line numbers a checkpoint needs to resume in the middle of a file.

Memory is bounded whatever the file: one block plus the longest line, the per-line arrays of one
block, and a batch's aggregate of at most ``max_consumers`` ids. The price: the code is denser than
a loop; a file made mostly of bad lines is parsed at Python's speed; the sort makes the
aggregation O(n log n) per block rather than a hash table's O(n).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from include.usage_ingest.model import RAW_TEXT_LIMIT, BadLine, BadLineReason, Batch, BatchLimits

MAX_CONSUMER = 9_223_372_036_854_775_807  # PostgreSQL bigint
MAX_AMOUNT = 1_000_000_000_000  # more in one line is a writer's bug; keeps batch sums within int64

BLOCK_BYTES = 8 << 20
NEWLINE, CARRIAGE_RETURN, SPACE, ZERO = (ord(c) for c in "\n\r 0")
# Fields longer than these are never plainly good: they overflow the fast path's integers.
CONSUMER_DIGITS, AMOUNT_DIGITS = 19, 13
# Most ids and amounts are short: fields up to these widths are converted in a narrower matrix.
SHORT_CONSUMER, SHORT_AMOUNT = 10, 7
_INTEGER = re.compile(rb"-?[0-9]+")


def classify(line: bytes) -> BadLineReason | tuple[int, int]:
    """The line rules for one line (without its ``\\n``): its reason if bad, else (consumer, amount)."""
    if line.endswith(b"\r"):
        line = line[:-1]
    if not line:
        return BadLineReason.EMPTY
    fields = line.split(b" ")
    if len(fields) != 2 or not fields[0] or not fields[1]:
        return BadLineReason.FIELD_COUNT
    consumer, amount = fields
    if not _INTEGER.fullmatch(consumer):
        return BadLineReason.CONSUMER_NOT_INTEGER
    if not _INTEGER.fullmatch(amount):
        return BadLineReason.AMOUNT_NOT_INTEGER
    if consumer[:1] == b"-" or amount[:1] == b"-":
        return BadLineReason.NEGATIVE
    consumer_id, units = int(consumer), int(amount)
    if consumer_id > MAX_CONSUMER or units > MAX_AMOUNT:
        return BadLineReason.OUT_OF_RANGE
    return consumer_id, units


def read_batches(
    path: str,
    *,
    start: int,
    end: int,
    first_line: int,
    limits: BatchLimits,
    block_bytes: int = BLOCK_BYTES,
) -> Iterator[Batch]:
    """The batches of the lines in ``[start, end)`` of ``path``, in order, tiling the range.

    ``start`` must be at a line's start and ``end`` just after a line break or at the end of the
    file (a :class:`~include.usage_ingest.model.ByteRange` is); ``first_line`` is the number of
    the line at ``start``. A resumed range passes its checkpoint (committed offset, next line).
    """
    if limits.max_bytes < 1 or limits.max_consumers < 1:
        raise ValueError(f"batch limits must be at least 1 byte and 1 consumer, not {limits}")
    batcher = _Batcher(start, first_line, limits)
    carry = b""
    position = start
    with open(path, "rb", buffering=0) as file:
        file.seek(start)
        while position < end:
            data = file.read(min(block_bytes, end - position))
            if not data:
                raise ValueError(
                    f"{path} ends at byte {position}, before its range's end {end}: the file "
                    "changed after it was planned, so its writer was not done (raise settle_seconds)"
                )
            position += len(data)
            chunk = carry + data if carry else data
            cut = len(chunk) if position >= end else chunk.rfind(b"\n") + 1
            carry = chunk[cut:]
            if cut:
                yield from batcher.add(_Lines(chunk[:cut] if carry else chunk))
    yield from batcher.finish()


class _Lines:
    """The lines of one block of whole lines: where each ends, and what each holds."""

    def __init__(self, chunk: bytes) -> None:
        buf = np.frombuffer(chunk, dtype=np.uint8)
        breaks = np.flatnonzero(buf == NEWLINE)
        ends = breaks + 1
        if chunk[-1:] != b"\n":  # the file's last line, without a line break: a line all the same
            breaks = np.append(breaks, len(buf))
            ends = np.append(ends, len(buf))
        starts = np.concatenate(([0], ends[:-1]))
        stops = breaks - ((breaks > starts) & (buf[np.maximum(breaks - 1, 0)] == CARRIAGE_RETURN))
        self.chunk, self.starts, self.stops = chunk, starts, stops
        self.ends = ends  # relative to the block: just after each line's break
        count = len(ends)
        self.good = np.zeros(count, dtype=bool)
        self.consumers = np.zeros(count, dtype=np.int64)
        self.amounts = np.zeros(count, dtype=np.int64)
        self.bad: dict[int, BadLine] = {}  # line index in the block → its bad line, number unset

        spaces = np.flatnonzero(buf == SPACE)
        if len(spaces):
            first = np.searchsorted(spaces, starts)
            one_space = np.searchsorted(spaces, stops) - first == 1
            space = spaces[np.minimum(first, len(spaces) - 1)]
            consumer_len, amount_len = space - starts, stops - space - 1
            candidates = np.flatnonzero(
                one_space
                & (consumer_len >= 1)
                & (consumer_len <= CONSUMER_DIGITS)
                & (amount_len >= 1)
                & (amount_len <= AMOUNT_DIGITS)
            )
            padded = np.concatenate((np.zeros(CONSUMER_DIGITS, dtype=np.uint8), buf))
            consumers, consumers_ok = _numbers(
                padded, space[candidates], consumer_len[candidates], SHORT_CONSUMER, CONSUMER_DIGITS
            )
            amounts, amounts_ok = _numbers(
                padded, stops[candidates], amount_len[candidates], SHORT_AMOUNT, AMOUNT_DIGITS
            )
            fine = consumers_ok & amounts_ok & (consumers <= MAX_CONSUMER) & (amounts <= MAX_AMOUNT)
            plain = candidates[fine]
            self.good[plain] = True
            self.consumers[plain] = consumers[fine].astype(np.int64)
            self.amounts[plain] = amounts[fine].astype(np.int64)
        # The few lines left: the rules one line at a time, for the reason or an odd good line.
        for index in np.flatnonzero(~self.good).tolist():
            line = chunk[starts[index] : breaks[index]]
            verdict = classify(line)
            if isinstance(verdict, BadLineReason):
                raw = line[:-1] if line.endswith(b"\r") else line
                self.bad[index] = BadLine(0, verdict, raw[:RAW_TEXT_LIMIT])
            else:
                self.good[index] = True
                self.consumers[index], self.amounts[index] = verdict


def _numbers(
    padded: np.ndarray, field_stops: np.ndarray, lengths: np.ndarray, short: int, longest: int
) -> tuple[np.ndarray, np.ndarray]:
    """The fields ``[stop - length, stop)`` of the block as uint64, and whether each is all digits.

    ``padded`` is the block after ``CONSUMER_DIGITS`` zero bytes, so a window never starts before it.
    Fields up to ``short`` digits (most) go through a narrow matrix, the rest through a wide one.
    """
    values = np.zeros(len(lengths), dtype=np.uint64)
    digits_only = np.zeros(len(lengths), dtype=bool)
    narrow = lengths <= short
    for group, width in ((np.flatnonzero(narrow), short), (np.flatnonzero(~narrow), longest)):
        if not len(group):
            continue
        windows = sliding_window_view(padded, width)
        # Row i: the `width` bytes ending at the field's stop (right-aligned digits).
        matrix = windows[field_stops[group] + CONSUMER_DIGITS - width] - np.uint8(ZERO)
        inside = np.arange(width) >= (width - lengths[group])[:, None]
        matrix[~inside] = 0
        digits_only[group] = (matrix <= 9).all(axis=1)
        number = np.zeros(len(group), dtype=np.uint64)
        for column in range(width):
            number = number * np.uint64(10) + matrix[:, column]
        values[group] = number
    return values, digits_only


class _Batcher:
    """Turns blocks of lines into batches within the limits, cutting blocks at line boundaries."""

    def __init__(self, start: int, first_line: int, limits: BatchLimits) -> None:
        self.limits = limits
        self.start, self.first_line = start, first_line  # of the open batch
        self.block_start = start  # file offset of the block being added
        self._empty()

    def _empty(self) -> None:
        self.end = self.start
        self.applied = 0
        self.keys = np.zeros(0, dtype=np.int64)  # sorted
        self.sums = np.zeros(0, dtype=np.int64)
        self.bad: list[BadLine] = []

    def add(self, lines: _Lines) -> Iterator[Batch]:
        ends = lines.ends + self.block_start  # file offsets
        count, line = len(ends), 0
        while line < count:
            # Lines line..stop-1 fit the bytes; an open batch with no line takes one line at least.
            stop = int(np.searchsorted(ends, self.start + self.limits.max_bytes, side="right"))
            if stop <= line:
                if self.end > self.start:
                    yield self._emit()
                    continue
                stop = line + 1
            stop = self._within_consumers(lines, line, stop)
            if stop == line:  # the next line's consumer does not fit: this batch is full
                yield self._emit()
                continue
            self._take(lines, line, stop, ends)
            line = stop
            if line < count:
                yield self._emit()
        self.block_start = int(ends[-1]) if count else self.block_start

    def finish(self) -> Iterator[Batch]:
        if self.end > self.start:
            yield self._emit()

    def _within_consumers(self, lines: _Lines, line: int, stop: int) -> int:
        """The last stop ≤ ``stop`` whose lines keep the batch within ``max_consumers``."""
        room = self.limits.max_consumers - len(self.keys)
        good = line + np.flatnonzero(lines.good[line:stop])
        consumers = lines.consumers[good]
        order = np.argsort(consumers)
        ordered = consumers[order]
        heads = np.flatnonzero(np.diff(ordered, prepend=ordered[:1] - 1) != 0) if len(ordered) else order
        if len(heads) <= room:
            return stop
        unique = ordered[heads]
        known = np.isin(unique, self.keys, assume_unique=True)
        if int((~known).sum()) <= room:
            return stop
        # Where each new consumer first appears (good's index); the (room+1)-th one ends the batch.
        first = np.minimum.reduceat(order, heads)[~known]
        first.sort()
        return int(good[first[room]])

    def _take(self, lines: _Lines, line: int, stop: int, ends: np.ndarray) -> None:
        good = lines.good[line:stop]
        consumers = lines.consumers[line:stop][good]
        amounts = lines.amounts[line:stop][good]
        if len(consumers):
            order = np.argsort(consumers)
            consumers, amounts = consumers[order], amounts[order]
            heads = np.flatnonzero(np.diff(consumers, prepend=consumers[:1] - 1) != 0)
            self._merge(consumers[heads], np.add.reduceat(amounts, heads))
        next_line = self.first_line + self.applied + len(self.bad)
        for index in range(line, stop):
            bad = lines.bad.get(index)
            if bad is not None:
                self.bad.append(BadLine(next_line + index - line, bad.reason, bad.raw))
        self.applied += len(consumers)
        self.end = int(ends[stop - 1])

    def _merge(self, consumers: np.ndarray, amounts: np.ndarray) -> None:
        """Add sorted unique ``consumers``' amounts to the batch's sorted aggregate."""
        at = np.searchsorted(self.keys, consumers)
        present = at < len(self.keys)
        present[present] = self.keys[at[present]] == consumers[present]
        self.sums[at[present]] += amounts[present]
        new = ~present
        self.keys = np.insert(self.keys, at[new], consumers[new])
        self.sums = np.insert(self.sums, at[new], amounts[new])

    def _emit(self) -> Batch:
        batch = Batch(
            start=self.start,
            end=self.end,
            first_line=self.first_line,
            applied_lines=self.applied,
            consumers=self.keys,
            amounts=self.sums,
            bad_lines=tuple(self.bad),
        )
        self.start, self.first_line = batch.end, batch.next_line
        self._empty()
        return batch
