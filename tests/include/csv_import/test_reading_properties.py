"""The reading side's promise, over generated CSV files with injected defects.

For any file: planned into chunks of any size and read chunk by chunk, every record ends in
exactly one Row or Reject, at the physical line it starts on, with the reason the defect put
in it calls for; rows carry the values written; and the chunked reading gives exactly what
reading the whole file at once gives.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.csv_import.model import (
    Chunk,
    Column,
    ColumnType,
    Dialect,
    FileSchema,
    Reject,
    RejectReason,
    Row,
    SourceFile,
)
from include.csv_import.planning import plan_stream
from include.csv_import.reader import read_chunk

KINDS = {
    ColumnType.INTEGER: st.integers(-(2**31), 2**31 - 1).map(str),
    ColumnType.NUMERIC: st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
    ColumnType.BOOLEAN: st.sampled_from(["true", "false"]),
    ColumnType.DATE: st.dates().map(lambda day: day.isoformat()),
}
# Text that exercises quoting: delimiters, quotes, every kind of line break, non-ASCII letters
# (cp1252 can encode them all), spaces, and `\.` (which PostgreSQL may read as the end of COPY
# data when a line starts with it).
TEXT = st.lists(st.sampled_from([*"ab ,;\"'\n\r\téß€", "\r\n", "\\."]), max_size=12).map("".join)
BAD_BYTE = {"utf-8": b"\xff", "utf-8-sig": b"\xff", "cp1252": b"\x81"}
MARK = "\x01"  # where a bad byte goes: written as it is, and the byte 01 in each encoding
NEEDS_QUOTES = re.compile('[,"\r\n]')
LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass
class Expected:
    line: int
    last_line: int
    values: tuple[str | None, ...] | None  # None: rejected
    reason: RejectReason | None = None


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[bytes, FileSchema, list[Expected]]:
    types = draw(st.lists(st.sampled_from([*KINDS, ColumnType.TEXT]), min_size=1, max_size=5))
    encoding = draw(st.sampled_from(list(BAD_BYTE)))
    terminator = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    header = draw(st.booleans())
    columns = tuple(Column(f"c{index}", f"C {index}", kind) for index, kind in enumerate(types))

    pieces: list[str] = []
    expected: list[Expected] = []
    line = 1

    def add(text: str) -> tuple[int, int]:
        """The first and last physical line of ``text`` appended to the file."""
        nonlocal line
        start = line
        pieces.append(text)
        breaks = len(LINE_BREAK.findall(text))
        line += breaks
        return start, start + breaks - (1 if LINE_BREAK.search(text[-1:]) else 0)

    def written(fields: list[str]) -> str:
        # Not csv.writer: with a "\n" terminator it leaves a lone "\r" unquoted, which every reader
        # (ours, editors) takes for a line break, so its files do not say what was written.
        quoted = [
            '"' + field.replace('"', '""') + '"' if NEEDS_QUOTES.search(field) else field for field in fields
        ]
        return ",".join(quoted if fields != [""] else ['""']) + terminator

    if header:
        # Header text is only skipped, never read: it may hold anything a value may.
        add(written([draw(TEXT) for _ in columns]))
    for _ in range(draw(st.integers(0, 25))):
        if draw(st.integers(0, 9)) == 0:
            add(terminator)  # a blank line: not a record
            continue
        fields = [draw(KINDS.get(kind, TEXT)) for kind in types]
        defect = draw(st.sampled_from(["none"] * 6 + ["field_count", "type", "encoding"]))
        typed = [index for index, kind in enumerate(types) if kind in KINDS]
        texts = [index for index, kind in enumerate(types) if kind is ColumnType.TEXT]
        if defect == "field_count":
            lines = add(written([*fields, "extra"]))
            expected.append(Expected(*lines, None, RejectReason.WRONG_FIELD_COUNT))
        elif defect == "type" and typed:
            fields[draw(st.sampled_from(typed))] = "not-a-value"
            lines = add(written(fields))
            expected.append(Expected(*lines, None, RejectReason.TYPE_MISMATCH))
        elif defect == "encoding" and texts:
            fields[draw(st.sampled_from(texts))] += MARK
            lines = add(written(fields))
            expected.append(Expected(*lines, None, RejectReason.INVALID_ENCODING))
        else:
            lines = add(written(fields))
            expected.append(Expected(*lines, tuple(value or None for value in fields)))
    if draw(st.booleans()):
        lines = add('"never closed' + terminator + "more" * draw(st.integers(0, 1)))
        expected.append(Expected(*lines, None, RejectReason.UNTERMINATED_QUOTE))

    text = "".join(pieces)
    data = text.encode(encoding).replace(b"\x01", BAD_BYTE[encoding])
    file = SourceFile("file:///generated.csv", None, len(data), "generated")
    return data, FileSchema(file, Dialect(encoding=encoding, header=header), columns), expected


def read_all(data: bytes, schema: FileSchema, chunks: tuple[Chunk, ...]) -> list[Row | Reject]:
    results: list[Row | Reject] = []
    for chunk in chunks:
        results.extend(read_chunk(io.BytesIO(data[chunk.start : chunk.end]), chunk, schema))
    return results


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv_files(), st.integers(1, 400), st.integers(1, 64))
def test_every_record_is_one_row_or_one_reject_whatever_the_chunking(
    generated: tuple[bytes, FileSchema, list[Expected]], chunk_bytes: int, block_bytes: int
) -> None:
    data, schema, expected = generated
    whole = read_all(data, schema, (Chunk(schema.file, 0, 0, None, 1),))
    plan = plan_stream(
        schema.file, schema.dialect, io.BytesIO(data), chunk_bytes=chunk_bytes, block_bytes=block_bytes
    )

    chunked = read_all(data, schema, plan.chunks)

    assert chunked == whole
    assert [result.line for result in whole] == [record.line for record in expected]
    for result, record in zip(whole, expected, strict=True):
        if record.values is not None:
            assert result == Row(record.line, record.values)
        else:
            assert isinstance(result, Reject)
            assert result.reason == record.reason, result
            assert (result.last_line or result.line) == record.last_line, result
    assert [chunk.start for chunk in plan.chunks[1:]] == [chunk.end for chunk in plan.chunks[:-1]]
