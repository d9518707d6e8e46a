"""Fingerprinting and splitting a finished usage file: one sequential read, before any parsing.

The read computes the file's sha256 (half of its identity: a file is its name and its content),
counts its lines and chooses line-aligned byte ranges of about ``range_bytes``, each a mapped task
that another worker may take, so a file of several GB is summed by several workers at once.
A range ends just after its last line break within ``range_bytes`` of its start (so a batch of
that size holds it whole: one transaction per range), or just after a line longer than that. It
never splits a line, and its first line's number is known before anyone parses it: bad lines
get their number in the whole file whichever worker finds them.

It costs one extra read of the file (hashing and counting line breaks run at about 1 GB/s, several
times the parser's speed, and a just-written file is usually in the page cache); the parse
itself then reads each range once. The file must not change while it is planned: its size,
inode and mtime are compared before and after, and a change is an error that names the file.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from include.usage_ingest.finished import FileChanged, file_changed
from include.usage_ingest.model import ByteRange, FilePlan, FinishedFile

PLAN_BLOCK_BYTES = 16 << 20


def plan_file(file: FinishedFile, *, range_bytes: int, block_bytes: int = PLAN_BLOCK_BYTES) -> FilePlan:
    """The sha256, line count and line-aligned ranges of ``file``, from one read of it.

    A file up to ``range_bytes`` is one range; an empty file is one range of 0 lines. A last
    line without a line break counts.
    """
    if range_bytes < 1:
        raise ValueError(f"range_bytes must be at least 1, not {range_bytes}")
    digest = hashlib.sha256()
    ranges: list[ByteRange] = []
    range_start, range_first = 0, 1
    breaks = offset = 0  # line breaks before `offset`, the file position of the block
    after_last_break = 0  # just after the last line break of the blocks before `offset`
    last = b""
    with open(file.path, "rb", buffering=0) as reader:
        _check_unchanged(file, os.fstat(reader.fileno()))
        while block := reader.read(block_bytes):
            digest.update(block)
            counted = 0  # breaks of this block before `counted` are in `breaks`
            while True:
                # The range ends after its last line break within range_bytes, so that it fits one
                # batch of range_bytes whole; a line longer than that ends it just after itself.
                target = range_start + range_bytes - offset  # its exclusive end, in this block
                if target >= len(block):  # at the block's end: the next block or the file's end decides
                    break
                within = max(range_start - offset, counted)
                found = block.rfind(b"\n", within, target) if target > within else -1
                if found < 0 and after_last_break > range_start:
                    # Its last line break within range_bytes was in an earlier block: `breaks`
                    # counts up to it, as no break of this block is counted yet.
                    ranges.append(
                        ByteRange(
                            len(ranges), range_start, after_last_break, range_first, breaks - range_first + 1
                        )
                    )
                    range_start, range_first = after_last_break, breaks + 1
                    continue
                if found < 0:
                    found = block.find(b"\n", max(target - 1, counted))
                if found < 0:
                    break
                breaks += _count_breaks(block, counted, found + 1)
                counted = found + 1
                ranges.append(
                    ByteRange(
                        len(ranges), range_start, offset + counted, range_first, breaks - range_first + 1
                    )
                )
                range_start, range_first = offset + counted, breaks + 1
            breaks += _count_breaks(block, counted, len(block))
            if (last_break := block.rfind(b"\n")) >= 0:
                after_last_break = offset + last_break + 1
            offset += len(block)
            last = block[-1:]
        _check_unchanged(file, os.fstat(reader.fileno()), read=offset)
    lines = breaks + (1 if last not in (b"", b"\n") else 0)
    if range_start < offset or not ranges:
        ranges.append(ByteRange(len(ranges), range_start, offset, range_first, lines - range_first + 1))
    return FilePlan(file=file, sha256=digest.hexdigest(), lines=lines, ranges=tuple(ranges))


def _count_breaks(block: bytes, start: int, stop: int) -> int:
    # NumPy's compare-and-count runs several times faster than bytes.count for one byte.
    return int(np.count_nonzero(np.frombuffer(block, np.uint8, stop - start, start) == ord("\n")))


def _check_unchanged(file: FinishedFile, status: os.stat_result, read: int | None = None) -> None:
    change = file_changed(file, status)
    if change is None and read is not None and read != file.size:
        change = f"{file.path} gave {read} bytes, {file.size} when found finished"
    if change:
        raise FileChanged(
            f"{change}: its writer was not done with it; raise settle_seconds so that the scan "
            "waits longer after a file's last write"
        )
