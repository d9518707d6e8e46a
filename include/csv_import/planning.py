"""Splitting a big file into line-aligned byte ranges that separate tasks import in parallel.

Where a record ends, without parsing
------------------------------------
With standard CSV quoting (a quote inside a quoted field is doubled, no escape character), a
line feed at byte p ends a record exactly when the number of quote bytes before p is even: every
quoted field holds an even number of them. So the planner reads the file once, counting quote
bytes and line breaks per block with ``bytes.count`` (C speed, some GB/s), and at each
``chunk_bytes`` mark takes the first line feed after it with an even count. The split is exact
even when fields hold newlines, and each chunk knows the physical line it starts at.

When the file is one chunk, and the plan says why
-------------------------------------------------
* a zip member: a compressed stream cannot be entered in the middle;
* an escape character (``\\"`` instead of ``""``): quotes no longer pair up;
* an encoding that is not ASCII-compatible (UTF-16): a quote or line feed byte may be half a
  character;
* a quote inside an unquoted field (``5" screen``, not standard CSV): Python's :mod:`csv` reads
  it as a character, so the count no longer tells where quoted fields are. The planner looks
  for a quote with neither a delimiter, a line break nor another quote on either side; should
  one of another shape slip through, the chunk that then ends inside a quoted field rejects its
  last record as ``unterminated_quote`` saying so, and nothing is lost silently;
* a file no bigger than ``chunk_bytes``, or with no record boundary after the first mark.

A chunk that starts at byte 0 includes the header (the reader skips it); a split plan's first
chunk starts after the header, and so do its line numbers.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from include.csv_import.model import Chunk, Dialect, SourceFile
from include.csv_import.reader import text_encoding
from include.csv_import.sources import READ_BLOCK, open_chunk

DEFAULT_CHUNK_BYTES = 256 * 1024 * 1024
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
_LF, _CR = 0x0A, 0x0D


@dataclass(frozen=True, slots=True)
class Plan:
    """The chunks of one file, in order, and one line saying how they were chosen."""

    file: SourceFile
    chunks: tuple[Chunk, ...]
    reason: str


def ascii_compatible(encoding: str) -> bool:
    """Whether every ASCII byte of the encoding is that ASCII character and never part of another.

    True for UTF-8 and the single-byte code pages; false for UTF-16/32 and double-byte encodings
    such as Shift-JIS, whose second bytes can look like ASCII.
    """
    info = codecs.lookup(encoding)
    if info.name in ("utf-8", "utf-8-sig"):
        return True
    ascii_bytes = bytes(range(128))
    try:
        every_byte = bytes(range(256)).decode(info.name, errors="replace")
        same_ascii = ascii_bytes.decode(info.name) == ascii_bytes.decode("ascii")
    except UnicodeDecodeError:
        return False
    return same_ascii and len(every_byte) == 256


def plan_file(file: SourceFile, dialect: Dialect, *, chunk_bytes: int, conn_id: str | None) -> Plan:
    """The chunks to import ``file`` in; reads it once when it is big enough to split."""
    reason = one_chunk_reason(file, dialect, chunk_bytes)
    if reason is not None:
        return whole(file, reason)
    with open_chunk(file, 0, None, conn_id=conn_id) as stream:
        return plan_stream(file, dialect, stream, chunk_bytes=chunk_bytes)


def one_chunk_reason(file: SourceFile, dialect: Dialect, chunk_bytes: int) -> str | None:
    """Why ``file`` is imported whole without reading it, or None if it may be split."""
    if file.member is not None:
        return "one chunk: zip member, cannot seek"
    if dialect.escapechar is not None:
        return f"one chunk: escape character {dialect.escapechar!r}, so counting quotes cannot find records"
    if not ascii_compatible(dialect.encoding):
        return f"one chunk: encoding {dialect.encoding} is not ASCII-compatible"
    if len(dialect.quotechar.encode(text_encoding(dialect.encoding, 1))) != 1:
        return f"one chunk: quote character {dialect.quotechar!r} is not one byte"
    if file.size <= chunk_bytes:
        return f"one chunk: {file.size} bytes, within the chunk size of {chunk_bytes}"
    return None


def whole(file: SourceFile, reason: str) -> Plan:
    """A plan of one chunk: the whole file from byte 0, header included."""
    return Plan(file, (Chunk(file, 0, 0, None, 1),), reason)


def plan_stream(
    file: SourceFile, dialect: Dialect, stream: BinaryIO, *, chunk_bytes: int, block_bytes: int = READ_BLOCK
) -> Plan:
    """Split the file that ``stream`` reads from its start (see the module's docstring).

    ``block_bytes`` is how much is read at a time: tests make it tiny, so that every boundary
    case falls on a block's edge somewhere.
    """
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be positive, not {chunk_bytes}")
    # Not the dialect's codec itself: "utf-8-sig" encodes a BOM before every string.
    codec = text_encoding(dialect.encoding, 1)
    quote = dialect.quotechar.encode(codec)
    (quote_byte,) = quote
    edges = re.escape(dialect.delimiter.encode(codec) + b"\r\n" + quote)
    # The quote first, its neighbours looked at around it: the regex engine then skips to each
    # quote at memchr speed (some 20 times faster than a pattern that starts with a class).
    stray = re.compile(
        re.escape(quote) + b"(?<=[^" + edges + b"]" + re.escape(quote) + b")(?=[^" + edges + b"])"
    )
    # Record starts as (byte, line); the first is after the BOM and, if any, the header.
    starts: list[tuple[int, int]] = []
    need_header = dialect.header
    position = quotes = breaks = 0
    after_cr = False
    tail = b""
    next_mark = 0
    while block := _read_block(stream, block_bytes):
        if position == 0 and not need_header:
            bom = codecs.BOM_UTF8 if block.startswith(codecs.BOM_UTF8) else b""
            starts.append((len(bom), 1))
            next_mark = len(bom) + chunk_bytes
        if need_header and after_cr and quotes % 2 == 0 and not block.startswith(b"\n"):
            # The header ended in a lone \r that was the previous block's last byte.
            starts.append((position, breaks + 1))
            need_header = False
            next_mark = position + chunk_bytes
        found = stray.search(tail + block)
        if found is not None:
            byte = position - len(tail) + found.start()
            return whole(
                file,
                f"one chunk: a quote inside an unquoted field near byte {byte} (not standard CSV "
                "quoting), so counting quotes cannot find records",
            )
        array = np.frombuffer(block, np.uint8)
        cursor = 0
        while True:
            # A chunk ends at or after its mark, so none is smaller than chunk_bytes.
            target = 0 if need_header else next_mark - position - 1
            if target >= len(block):
                break
            if need_header:
                # The header may end in a lone \r (a data split never does: it waits for a \n).
                found = _LINE_BREAK.search(block, cursor)
                if found is None or (found.end() == len(block) and block.endswith(b"\r")):
                    break
                end = found.end()
            else:
                line_feed = block.find(b"\n", max(cursor, target))
                if line_feed == -1:
                    break
                end = line_feed + 1
            quotes += _count(array, quote_byte, cursor, end)
            breaks += _line_breaks(block, array, cursor, end, after_cr)
            after_cr = False
            cursor = end
            if quotes % 2 == 0:
                starts.append((position + end, breaks + 1))
                need_header = False
                next_mark = position + end + chunk_bytes
        quotes += _count(array, quote_byte, cursor, len(block))
        breaks += _line_breaks(block, array, cursor, len(block), after_cr)
        after_cr = block.endswith(b"\r")
        tail = block[-2:]
        position += len(block)
    # A record start at the very end of the file begins nothing.
    starts = [(byte, line) for byte, line in starts if byte < position]
    if len(starts) <= 1:
        return whole(file, "one chunk: no record boundary after the first chunk size")
    ends = [byte for byte, _ in starts[1:]] + [None]
    chunks = tuple(
        Chunk(file, number, byte, end, line)
        for number, ((byte, line), end) in enumerate(zip(starts, ends, strict=True))
    )
    return Plan(file, chunks, f"split into {len(chunks)} chunks at record boundaries")


def _read_block(stream: BinaryIO, size: int) -> bytes:
    # At least 4 bytes: a BOM is recognised in the first block.
    size = max(size, 4)
    parts, remaining = [], size
    while remaining > 0 and (part := stream.read(remaining)):
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


def _line_breaks(block: bytes, array: np.ndarray, start: int, end: int, after_cr: bool) -> int:
    r"""Line breaks in ``block[start:end]`` as Python's text reader counts them: ``\n``, ``\r\n``, ``\r``."""
    count = _count(array, _LF, start, end)
    if block.find(b"\r", start, end) != -1:  # not in most files: two passes saved
        count += _count(array, _CR, start, end) - _count_crlf(array, start, end)
    if after_cr and block.startswith(b"\n", start):
        count -= 1  # a \r\n split between two blocks
    return count


# NumPy counts a byte some three times faster than bytes.count, and without the GIL (files are
# planned side by side); a window at a time, so that no block-sized temporary is made.
_WINDOW = 1024 * 1024


def _count(array: np.ndarray, byte: int, start: int, end: int) -> int:
    return sum(
        int(np.count_nonzero(array[at : min(at + _WINDOW, end)] == byte)) for at in range(start, end, _WINDOW)
    )


def _count_crlf(array: np.ndarray, start: int, end: int) -> int:
    total = 0
    for at in range(start, end - 1, _WINDOW):
        stop = min(at + _WINDOW, end - 1)
        total += int(np.count_nonzero((array[at:stop] == _CR) & (array[at + 1 : stop + 1] == _LF)))
    return total
