"""Plain records: the fast path gives exactly what the careful reader gives, record for record.

A block of plain records is expanded here by Python's own ``csv`` (an independent parse of the
bytes that go to COPY) and compared with the careful reader's rows; everything else must come
out of the careful reader unchanged. PostgreSQL's reading of the same bytes is checked through
the importer in ``test_importer.py``.
"""

from __future__ import annotations

import codecs
import csv
import io

import pytest
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
)
from include.csv_import.plain import PlainRecords, copy_format, read_chunk_plain
from include.csv_import.planning import plan_stream
from include.csv_import.reader import read_chunk
from tests.include.csv_import.conftest import source
from tests.include.csv_import.test_reading_properties import Expected, csv_files

PLAIN_CSV = Dialect()
SCHEMA_COLUMNS = (
    Column("id", "id", ColumnType.INTEGER),
    Column("name", "name", ColumnType.TEXT),
    Column("issued", "issued", ColumnType.DATE),
)


def schema_of(
    data: bytes, dialect: Dialect = PLAIN_CSV, columns: tuple[Column, ...] = SCHEMA_COLUMNS
) -> FileSchema:
    return FileSchema(source("plain.csv", size=len(data)), dialect, columns)


def lines_sent_plain(items: list[Row | Reject | PlainRecords]) -> list[int]:
    """The first lines of the records that went as plain records, in order."""
    return [line for item in items if isinstance(item, PlainRecords) for line in item.first_lines.tolist()]


def expanded(items: list[Row | Reject | PlainRecords], schema: FileSchema) -> list[Row | Reject]:
    """Plain records as the rows they are, parsed by Python's csv; in line order."""
    out: list[Row | Reject] = []
    encoding = codecs.lookup(schema.dialect.encoding).name
    for item in items:
        if not isinstance(item, PlainRecords):
            out.append(item)
            continue
        for record, line in zip(item.records.to_pylist(), item.first_lines.tolist(), strict=True):
            text = record.decode(encoding) if isinstance(record, bytes) else record
            (fields,) = csv.reader(
                io.StringIO(text, newline=""),
                delimiter=schema.dialect.delimiter,
                quotechar=schema.dialect.quotechar,
                strict=True,
            )
            out.append(Row(line, tuple(value or None for value in fields)))
    return sorted(out, key=lambda result: result.line or 0)


def both(data: bytes, schema: FileSchema, chunk: Chunk, block_bytes: int) -> tuple[list, list, list]:
    careful = list(read_chunk(io.BytesIO(data[chunk.start : chunk.end]), chunk, schema))
    items = list(
        read_chunk_plain(io.BytesIO(data[chunk.start : chunk.end]), chunk, schema, block_bytes=block_bytes)
    )
    return careful, expanded(items, schema), items


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv_files(), st.integers(1, 400), st.integers(1, 96))
def test_plain_records_and_the_rest_are_what_the_careful_reader_gives(
    generated: tuple[bytes, FileSchema, list[Expected]], chunk_bytes: int, block_bytes: int
) -> None:
    data, schema, _ = generated
    plan = plan_stream(schema.file, schema.dialect, io.BytesIO(data), chunk_bytes=chunk_bytes, block_bytes=64)
    for chunk in plan.chunks:
        careful, fast, _ = both(data, schema, chunk, block_bytes)
        assert fast == careful


def test_a_file_of_plain_records_is_one_block_of_them_with_lineage_in_front() -> None:
    data = b'id,name,issued\r\n1,"Smith, J",2024-01-31\r\n2,"say ""hi""\r\non two lines",\r\n3,,2024-02-01'
    schema = schema_of(data)
    careful, fast, items = both(data, schema, Chunk(schema.file, 0, 0, None, 1), 1 << 20)

    assert fast == careful
    plain = [item for item in items if isinstance(item, PlainRecords)]
    assert sum(block.rows for block in plain) == 3
    assert lines_sent_plain(items) == [2, 3, 5]
    assert b"".join(block.payload(7) for block in plain) == (
        b'7,2,1,"Smith, J",2024-01-31\r\n7,3,2,"say ""hi""\r\non two lines",\r\n7,5,3,,2024-02-01'
    )


@pytest.mark.parametrize(
    ("record", "why"),
    [
        (b"007,a,2024-01-31", "a leading zero is converted or rejected, never passed on"),
        (b" 12 ,a,2024-01-31", "spaces around a number are trimmed by the converter"),
        (b"1,a,31/01/2024", "not an ISO date"),
        (b"1,a,0999-01-01", "a year PostgreSQL and Python may read differently"),
        (b'1,a"b,2024-01-31', "a quote inside an unquoted field"),
        (b'1,"a" ,2024-01-31', "text after a closing quote"),
        (b"1,a", "too few fields"),
        (b"1,a\x00b,2024-01-31", "NUL"),
        (b"1,caf\xe9,2024-01-31", "not UTF-8"),
        (b'1,"a\n\\.\nb",2024-01-31', "a line PostgreSQL may read as the end of the data"),
    ],
)
def test_a_record_that_is_not_plain_goes_through_the_careful_reader(record: bytes, why: str) -> None:
    data = b"id,name,issued\n1,a,2024-01-31\n" + record + b"\n2,b,2024-02-01\n"
    schema = schema_of(data)
    careful, fast, items = both(data, schema, Chunk(schema.file, 0, 0, None, 1), 1 << 20)

    assert fast == careful, why
    plain_lines = lines_sent_plain(items)
    assert plain_lines[0] == 2, why
    assert 3 not in plain_lines, why


def test_a_quote_that_opens_mid_file_hands_the_rest_of_the_chunk_to_the_careful_reader() -> None:
    # `a"b` is a quote inside an unquoted field; then `"c` opens a quoted field that the careful
    # reader carries over the following lines: parity cannot tell, so it reads on from there.
    lines = [
        b"1,ok,2024-01-01",
        b'2,a"b,"c',
        b"3,in the quote,2024-01-03",
        b'4,x",2024-01-04',
        b"5,after,2024-01-05",
    ]
    data = b"id,name,issued\n" + b"\n".join(lines) + b"\n"
    schema = schema_of(data)
    careful, fast, items = both(data, schema, Chunk(schema.file, 0, 0, None, 1), 1 << 20)

    assert fast == careful
    plain_lines = lines_sent_plain(items)
    assert plain_lines == [2]


@given(st.integers(1, 64))
def test_records_straddling_blocks_and_a_crlf_split_between_blocks_read_the_same(block_bytes: int) -> None:
    data = b'id,name,issued\r\n1,"a\r\nb",2024-01-31\r\n2,x,\r\n\r\n3,"""q""",2024-03-01\r\n4,y,2024-03-02'
    schema = schema_of(data)
    careful, fast, _ = both(data, schema, Chunk(schema.file, 0, 0, None, 1), block_bytes)

    assert fast == careful
    assert [result.line for result in careful] == [2, 4, 6, 7]


@given(st.integers(1, 64))
def test_a_line_postgresql_may_read_as_the_end_of_the_data_is_never_sent_whatever_the_blocks(
    block_bytes: int,
) -> None:
    data = b'id,name,issued\n1,"a\n\\.\nb",2024-01-31\n2,x,2024-02-01\n3,"c\r\n\\.",2024-02-02\n'
    schema = schema_of(data)
    careful, fast, items = both(data, schema, Chunk(schema.file, 0, 0, None, 1), block_bytes)

    assert fast == careful
    plain_lines = lines_sent_plain(items)
    assert plain_lines == [5]


def test_a_chunk_that_ends_inside_a_quote_rejects_its_last_record_as_the_careful_reader_does() -> None:
    data = b'id,name,issued\n1,a,2024-01-31\n2,"never closed,2024-01-31\n3,b,2024-02-01'
    schema = schema_of(data)
    careful, fast, _ = both(data, schema, Chunk(schema.file, 0, 0, None, 1), 16)

    assert fast == careful
    assert isinstance(careful[-1], Reject)
    assert careful[-1].reason is RejectReason.UNTERMINATED_QUOTE


@pytest.mark.parametrize(
    ("dialect", "columns", "plain"),
    [
        (Dialect(), SCHEMA_COLUMNS, True),
        (Dialect(encoding="utf-8-sig"), SCHEMA_COLUMNS, True),
        (Dialect(encoding="cp1252", delimiter=";"), SCHEMA_COLUMNS, True),
        (Dialect(delimiter="\t"), SCHEMA_COLUMNS, True),
        (Dialect(escapechar="\\"), SCHEMA_COLUMNS, False),
        (Dialect(encoding="utf-16"), SCHEMA_COLUMNS, False),
        (Dialect(encoding="shift_jis"), SCHEMA_COLUMNS, False),
        (Dialect(), SCHEMA_COLUMNS[:1], False),
    ],
)
def test_only_dialects_postgresql_reads_the_same_way_have_plain_records(
    dialect: Dialect, columns: tuple[Column, ...], plain: bool
) -> None:
    assert (copy_format(schema_of(b"", dialect, columns)) is not None) is plain


def test_bytes_a_code_page_lacks_are_never_plain() -> None:
    data = "id;name;issued\n1;café;2024-01-31\n2;".encode("cp1252") + b"\x81" + b";2024-01-31\n"
    schema = schema_of(data, Dialect(encoding="cp1252", delimiter=";"))
    careful, fast, items = both(data, schema, Chunk(schema.file, 0, 0, None, 1), 1 << 20)

    assert fast == careful
    assert isinstance(careful[-1], Reject)
    assert careful[-1].reason is RejectReason.INVALID_ENCODING
    plain_lines = lines_sent_plain(items)
    assert plain_lines == [2]
