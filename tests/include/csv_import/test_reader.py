"""Reading a chunk: each record a Row or a Reject with the reason, line and raw text a person needs."""

from __future__ import annotations

import codecs
import io

from include.csv_import.model import (
    RAW_TEXT_LIMIT,
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
from include.csv_import.reader import MAX_LINE_CHARS, read_chunk

FILE = SourceFile("file:///drop/certificates.csv", None, 0, "test")
COLUMNS = (
    Column("id", "ID", ColumnType.INTEGER),
    Column("address", "Address", ColumnType.TEXT),
    Column("lodged", "Lodged", ColumnType.DATE),
)


def read(data: bytes, dialect: Dialect | None = None, chunk: Chunk | None = None) -> list[Row | Reject]:
    schema = FileSchema(FILE, dialect or Dialect(), COLUMNS)
    return list(read_chunk(io.BytesIO(data), chunk or Chunk(FILE, 0, 0, None, 1), schema))


def test_rows_carry_their_physical_line_and_values_written_for_postgresql() -> None:
    results = read(b'ID,Address,Lodged\n1,"1 High St\nLeeds",2024-01-31\n 2 ,,2024-02-01\n')

    assert results == [
        Row(2, ("1", "1 High St\nLeeds", "2024-01-31")),
        Row(4, ("2", None, "2024-02-01")),
    ]


def test_bom_and_crlf_leave_no_trace_in_values() -> None:
    data = codecs.BOM_UTF8 + b"ID,Address,Lodged\r\n1,Flat 2,2024-01-31\r\n2,x,\r\n"

    assert read(data, Dialect(encoding="utf-8-sig")) == [
        Row(2, ("1", "Flat 2", "2024-01-31")),
        Row(3, ("2", "x", None)),
    ]


def test_a_wrong_number_of_fields_is_rejected_with_the_line_as_read() -> None:
    (reject,) = read(b"ID,Address,Lodged\n1,only two\n")

    assert reject == Reject(
        2, RejectReason.WRONG_FIELD_COUNT, None, "1,only two", "expected 3 fields, found 2"
    )


def test_a_value_that_does_not_fit_names_its_column() -> None:
    (reject,) = read(b"ID,Address,Lodged\n1,x,31/01/2024\n")

    assert isinstance(reject, Reject)
    assert (reject.line, reject.reason, reject.column) == (2, RejectReason.TYPE_MISMATCH, "lodged")
    assert "'31/01/2024' does not fit, expected an ISO date YYYY-MM-DD" in reject.detail


def test_invalid_bytes_cost_their_own_line_and_nothing_else() -> None:
    reject, row = read(b"ID,Address,Lodged\n1,caf\xe9,2024-01-31\n2,ok,2024-02-01\n")

    assert isinstance(reject, Reject)
    assert (reject.line, reject.reason, reject.raw) == (
        2,
        RejectReason.INVALID_ENCODING,
        "1,caf\\xe9,2024-01-31",
    )
    assert "not valid in the file's encoding" in reject.detail
    assert row == Row(3, ("2", "ok", "2024-02-01"))


def test_the_same_bytes_are_text_in_the_files_encoding() -> None:
    assert read(b"ID,Address,Lodged\n1,caf\xe9,2024-01-31\n", Dialect(encoding="cp1252")) == [
        Row(2, ("1", "café", "2024-01-31"))
    ]


def test_a_nul_character_is_rejected_as_postgresql_cannot_store_it() -> None:
    (reject,) = read(b"ID,Address,Lodged\n1,a\x00b,2024-01-31\n")

    assert isinstance(reject, Reject)
    assert reject.reason == RejectReason.INVALID_ENCODING
    assert reject.raw == "1,a\\x00b,2024-01-31"


def test_an_unterminated_quote_at_the_end_is_one_reject_for_all_its_lines() -> None:
    results = read(b'ID,Address,Lodged\n1,a,2024-01-31\n2,"never closed\n3,b,2024-02-01\n')

    assert results[0] == Row(2, ("1", "a", "2024-01-31"))
    assert results[1] == Reject(
        3,
        RejectReason.UNTERMINATED_QUOTE,
        None,
        '2,"never closed\n3,b,2024-02-01',
        "a quoted field is never closed: the input ends inside it at the end of the file",
        last_line=4,
    )


def test_a_chunk_that_ends_inside_a_quote_says_the_file_needs_one_chunk() -> None:
    (reject,) = read(b'1,"a\n', chunk=Chunk(FILE, 3, 100, 105, 7))

    assert isinstance(reject, Reject)
    assert reject.line == 7
    assert "at the end of chunk 3 (byte 105)" in reject.detail


def test_a_chunk_after_the_first_starts_at_a_record_and_counts_from_its_first_line() -> None:
    results = read(b"7,x,2024-01-31\n8,y,2024-01-31\n", chunk=Chunk(FILE, 1, 500, 530, 41))

    assert [result.line for result in results] == [41, 42]


def test_a_line_longer_than_the_reader_holds_is_rejected_and_reading_goes_on() -> None:
    data = b"ID,Address,Lodged\n1," + b"x" * (MAX_LINE_CHARS + 10) + b",2024-01-31\n2,y,2024-02-01\n"

    first, second = read(data)

    assert isinstance(first, Reject)
    assert first.reason == RejectReason.LINE_TOO_LONG
    assert len(first.raw) == RAW_TEXT_LIMIT
    assert second == Row(3, ("2", "y", "2024-02-01"))


def test_blank_lines_are_not_records() -> None:
    assert read(b"ID,Address,Lodged\n\n1,a,2024-01-31\n\r\n\n") == [Row(3, ("1", "a", "2024-01-31"))]


def test_a_file_without_header_starts_with_data_at_line_one() -> None:
    assert read(b"1,a,2024-01-31\n", Dialect(header=False)) == [Row(1, ("1", "a", "2024-01-31"))]


def test_raw_text_is_bounded() -> None:
    (reject,) = read(b"ID,Address,Lodged\n" + b"y" * 5000 + b"\n")

    assert isinstance(reject, Reject)
    assert reject.raw == "y" * RAW_TEXT_LIMIT


def test_an_empty_input_gives_nothing() -> None:
    assert read(b"") == []
