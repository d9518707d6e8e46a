"""Parsing a byte range of a usage file into batches of per-consumer sums: the pipeline's hot loop.

The decision: lines are parsed in bulk with NumPy on the raw bytes, a block (1 MiB) at a time,
and only the lines that are not plainly good go through Python. The bytes below ``'0'`` give the
line breaks and each line's shape at once (a plainly good line holds just one space, an
optional CR and its break among them); a byte above ``'9'`` anywhere spoils its line. Fields
of up to 16 digits are then read 8 bytes at a time as unaligned uint64 words and converted with
three multiplications each (SWAR), 17 to 19 digits digit by digit: no Python loop per line.
Everything else, a bad line or an odd good one (a sign, leading zeros beyond 19 digits), goes
through :func:`classify`, the line rules written plainly, which gives a bad line its one reason
in the order of ``BadLineReason``. Sums per consumer are exact int64: dense ids (the usual
sequential ones) by index with ``np.add.at``, scattered ones by sorting; floats never touch an
amount. A batch also ends before the sum of all its amounts would pass int64's maximum, so no
consumer's sum in it can overflow whatever ``max_bytes`` (an amount is at most 10^12, and at
10^12 per 16-byte line a batch would need more than 130 MiB to reach it); the store's totals
are bigints that raise on overflow.

Why not DuckDB, the fastest engine for such sums (``docs/PERFORMANCE.md`` measures both side by
side): it does not apply our rules (its typed read sums ``-1 2`` and amounts beyond 10^12), gives
no reason or line number per bad line, and no byte offsets for a checkpoint to resume from
mid-file; told our rules in SQL, it is slower than this. Python one line at a time is about 1M
lines/s. Big files are split into ranges that several workers parse at once, so one core's speed
bounds a range, not a file.

Memory is bounded whatever the file: one block plus the longest line, the per-line arrays of one
block, and a batch's aggregate of at most ``max_consumers`` ids. The price: the code is denser
than a loop and leans on exact-integer tricks (kept honest by a property test against a
line-by-line reference); a file made mostly of bad lines is parsed at Python's speed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from include.usage_ingest.finished import FileChanged
from include.usage_ingest.model import RAW_TEXT_LIMIT, BadLine, BadLineReason, Batch, BatchLimits

MAX_CONSUMER = 9_223_372_036_854_775_807  # PostgreSQL bigint
MAX_AMOUNT = 1_000_000_000_000  # more in one line is a writer's bug
# A batch ends before the sum of its amounts passes this: every consumer's sum in it fits int64.
MAX_BATCH_SUM = np.iinfo(np.int64).max

# Measured on a 100 MB file: 1 MiB blocks parse as fast as 8 MiB ones (80 MB/s on one core; the
# per-line arrays stay in the CPU's caches) for 26 MB of working memory instead of 170 MB.
BLOCK_BYTES = 1 << 20
NEWLINE, CARRIAGE_RETURN, SPACE, ZERO, NINE = (ord(c) for c in "\n\r 09")
# Fields longer than these are never plainly good: they overflow the fast path's integers.
CONSUMER_DIGITS, AMOUNT_DIGITS = 19, 13
PADDING = CONSUMER_DIGITS  # zero bytes before a block, so that a field's window never starts before it
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
    max_batch_sum: int = MAX_BATCH_SUM,
) -> Iterator[Batch]:
    """The batches of the lines in ``[start, end)`` of ``path``, in order, tiling the range.

    ``start`` must be at a line's start and ``end`` just after a line break or at the end of the
    file (a :class:`~include.usage_ingest.model.ByteRange` is); ``first_line`` is the number of
    the line at ``start``. A resumed range passes its checkpoint (committed offset, next line).
    """
    if limits.max_bytes < 1 or limits.max_consumers < 1:
        raise ValueError(f"batch limits must be at least 1 byte and 1 consumer, not {limits}")
    batcher = _Batcher(start, first_line, limits, max_batch_sum)
    carry = b""
    position = start
    with open(path, "rb", buffering=0) as file:
        file.seek(start)
        while position < end:
            data = file.read(min(block_bytes, end - position))
            if not data:
                raise FileChanged(
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
        # Bytes below '0': line breaks, spaces, CRs, signs, tabs. A plainly good line has just
        # its space, an optional CR and its line break among them; most lines have two.
        low = np.flatnonzero(buf < ZERO)
        if chunk[-1:] != b"\n":  # the file's last line, without a line break: a line all the same
            low = np.append(low, len(buf))
        kinds = buf[np.minimum(low, len(buf) - 1)]
        kinds[-1] = NEWLINE  # (the break of a last line without one)
        at_break = np.flatnonzero(kinds == NEWLINE)
        breaks = low[at_break]
        ends = np.minimum(breaks + 1, len(buf))  # relative to the block: just after each break
        starts = np.concatenate(([0], ends[:-1]))
        inner = np.diff(at_break, prepend=-1) - 1  # low bytes in each line, its break excluded
        # A CR right before a line's break is part of the break (CRLF).
        cr = np.flatnonzero(kinds[:-1] == CARRIAGE_RETURN)
        cr = cr[(kinds[cr + 1] == NEWLINE) & (low[cr + 1] == low[cr] + 1)]
        crlf = np.zeros(len(breaks), dtype=np.int64)
        crlf[np.searchsorted(at_break, cr + 1)] = 1
        space_at = np.maximum(at_break - 1 - crlf, 0)
        shaped = (inner - crlf == 1) & (kinds[space_at] == SPACE)
        # Bytes above '9' (letters, non-ASCII) make a line not plainly good.
        high = np.flatnonzero(buf > NINE)
        shaped[np.searchsorted(breaks, high)] = False
        stops = breaks - crlf
        space = low[space_at]
        self.ends = ends
        count = len(ends)
        self.good = np.zeros(count, dtype=bool)
        self.consumers = np.zeros(count, dtype=np.int64)
        self.amounts = np.zeros(count, dtype=np.int64)
        self.bad: dict[int, BadLine] = {}  # line index in the block → its bad line, number unset

        consumer_len, amount_len = space - starts, stops - space - 1
        candidates = np.flatnonzero(
            shaped
            & (consumer_len >= 1)
            & (consumer_len <= CONSUMER_DIGITS)
            & (amount_len >= 1)
            & (amount_len <= AMOUNT_DIGITS)
        )
        if len(candidates):
            padded = np.concatenate((np.zeros(PADDING, dtype=np.uint8), buf))
            consumers = _numbers(padded, space[candidates], consumer_len[candidates])
            amounts = _numbers(padded, stops[candidates], amount_len[candidates])
            fine = (consumers <= MAX_CONSUMER) & (amounts <= MAX_AMOUNT)
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
        self.bad_index = np.fromiter(self.bad, dtype=np.int64, count=len(self.bad))  # ascending


def _numbers(padded: np.ndarray, field_stops: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The fields ``[stop - length, stop)`` of the block, all ASCII digits, as uint64.

    ``padded`` is the block after ``PADDING`` zero bytes, so a window never starts before it.
    Fields of up to 16 digits (nearly all) are read 8 bytes at a time as one uint64 and turned
    into their value with three multiplications (SWAR: all 8 digits at once); longer ones digit
    by digit.
    """
    # Every 8 bytes from every offset, as one unaligned little-endian uint64 (a view, no copy).
    packed = np.ndarray((len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))
    stops = field_stops + PADDING
    values = _last_eight(packed, stops, np.minimum(lengths, 8))
    longer = np.flatnonzero(lengths > 8)  # few: leading zeros, big ids
    if len(longer):
        high = np.minimum(lengths[longer] - 8, 8)
        values[longer] += _last_eight(packed, stops[longer] - 8, high) * np.uint64(100_000_000)
        wide = longer[lengths[longer] > 16]
        if len(wide):
            width = CONSUMER_DIGITS
            matrix = sliding_window_view(padded, width)[stops[wide] - width] - np.uint8(ZERO)
            matrix *= np.arange(width, dtype=np.uint8) >= (width - lengths[wide]).astype(np.uint8)[:, None]
            number = np.zeros(len(wide), dtype=np.uint64)
            for column in range(width):
                number = number * np.uint64(10) + matrix[:, column]
            values[wide] = number
    return values


def _last_eight(packed: np.ndarray, stops: np.ndarray, digits: np.ndarray) -> np.ndarray:
    """The value of the ``digits`` (1 to 8) ASCII digits just before each of ``stops``."""
    # The word's low bytes come before the digits (the line's start, the space): shifted out,
    # they read as leading zeros.
    unused = ((8 - digits) * 8).astype(np.uint64)
    return _eight_digits((packed[stops - 8] >> unused) << unused)


def _eight_digits(ascii_digits: np.ndarray) -> np.ndarray:
    """Eight ASCII digits packed little-endian in a uint64 (first digit in the lowest byte) →
    their value. Multiplications wrap modulo 2^64 on purpose: each step combines pairs of
    neighbouring numbers, 1-digit into 2-digit, 2 into 4, 4 into 8 (the trick from simdjson)."""
    v = ascii_digits & np.uint64(0x0F0F0F0F0F0F0F0F)
    v = (v * np.uint64(2561)) >> np.uint64(8)
    v = ((v & np.uint64(0x00FF00FF00FF00FF)) * np.uint64(6553601)) >> np.uint64(16)
    return ((v & np.uint64(0x0000FFFF0000FFFF)) * np.uint64(42949672960001)) >> np.uint64(32)


def _aggregate(consumers: np.ndarray, amounts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct ``consumers`` ascending and the exact int64 sum of each one's ``amounts``.

    Most ids of a busy service are dense (sequential ids span a few times their count): those
    are summed by index in O(n); the rest (and all of them when ids are sparse) are sorted.
    """
    if not len(consumers):
        return consumers, amounts
    low = int(consumers.min())
    offsets = consumers - low  # ≥ 0: no overflow, ids are never negative
    dense = offsets < 4 * len(consumers) + 4096
    if dense.sum() < len(consumers) // 2:
        return _sorted_sums(consumers, amounts)
    sums = np.zeros(4 * len(consumers) + 4096, dtype=np.int64)
    np.add.at(sums, offsets[dense], amounts[dense])
    seen = np.zeros(len(sums), dtype=bool)
    seen[offsets[dense]] = True
    present = np.flatnonzero(seen)
    if dense.all():
        return present + low, sums[present]
    rest = _sorted_sums(consumers[~dense], amounts[~dense])  # all above the dense ones
    return np.concatenate((present + low, rest[0])), np.concatenate((sums[present], rest[1]))


def _sorted_sums(consumers: np.ndarray, amounts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(consumers)
    ordered = consumers[order]
    heads = np.flatnonzero(np.diff(ordered, prepend=ordered[:1] - 1) != 0)
    return ordered[heads], np.add.reduceat(amounts[order], heads)


class _Batcher:
    """Turns blocks of lines into batches within the limits, cutting blocks at line boundaries."""

    def __init__(self, start: int, first_line: int, limits: BatchLimits, max_sum: int) -> None:
        self.limits = limits
        self.max_sum = max_sum
        self.start, self.first_line = start, first_line  # of the open batch
        self.block_start = start  # file offset of the block being added
        self._empty()

    def _empty(self) -> None:
        self.end = self.start
        self.applied = 0
        self.total = 0  # of every amount in the batch (a Python int: exact)
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
            good = line + np.flatnonzero(lines.good[line:stop])
            consumers, sums = _aggregate(lines.consumers[good], lines.amounts[good])
            room = self.limits.max_consumers - len(self.keys)
            if len(consumers) > room:
                cut = self._cut_for_consumers(lines.consumers[good], consumers, room)
                if cut is not None:
                    if good[cut] == line:  # the next line's consumer does not fit: the batch is full
                        yield self._emit()
                        continue
                    stop, good = int(good[cut]), good[:cut]
                    consumers, sums = _aggregate(lines.consumers[good], lines.amounts[good])
            # A segment is at most one block: its sums cannot overflow, the batch's could.
            total = int(sums.sum())
            if self.total + total > self.max_sum:
                if self.end > self.start:  # the open batch is full: the segment starts the next one
                    yield self._emit()
                    continue
                fit = int(np.searchsorted(np.cumsum(lines.amounts[good]), self.max_sum, side="right"))
                fit = max(fit, 1)  # a batch takes one line at least
                if fit < len(good):
                    stop, good = int(good[fit]), good[:fit]
                    consumers, sums = _aggregate(lines.consumers[good], lines.amounts[good])
                    total = int(sums.sum())
            self._merge(consumers, sums)
            self.total += total
            self._take_lines(lines, line, stop, len(good), ends)
            line = stop
            if line < count:
                yield self._emit()
        self.block_start = int(ends[-1]) if count else self.block_start

    def finish(self) -> Iterator[Batch]:
        if self.end > self.start:
            yield self._emit()

    def _cut_for_consumers(self, consumers: np.ndarray, unique: np.ndarray, room: int) -> int | None:
        """Where in ``consumers`` (a segment's, in line order) the batch would pass
        ``max_consumers``: the first appearance of the (room+1)-th consumer it does not hold yet."""
        new = ~np.isin(unique, self.keys, assume_unique=True)
        if int(new.sum()) <= room:
            return None
        order = np.argsort(consumers, kind="stable")  # so a head is a consumer's first appearance
        ordered = consumers[order]
        heads = np.flatnonzero(np.diff(ordered, prepend=ordered[:1] - 1) != 0)
        first = order[heads][new]  # `unique` is sorted too: the same consumers in the same order
        first.sort()
        return int(first[room])

    def _take_lines(self, lines: _Lines, line: int, stop: int, applied: int, ends: np.ndarray) -> None:
        next_line = self.first_line + self.applied + len(self.bad)
        low, high = np.searchsorted(lines.bad_index, (line, stop)).tolist()
        for index in lines.bad_index[low:high].tolist():
            bad = lines.bad[index]
            self.bad.append(BadLine(next_line + index - line, bad.reason, bad.raw))
        self.applied += applied
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
