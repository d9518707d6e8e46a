"""Chunk planning: splits only at record boundaries, knows each chunk's first line, says why."""

from __future__ import annotations

import codecs
import io

import pytest

from include.csv_import.model import Dialect, SourceFile
from include.csv_import.planning import Plan, ascii_compatible, plan_file, plan_stream


def source(data: bytes, member: str | None = None) -> SourceFile:
    return SourceFile("file:///drop/data.csv", member, len(data), "test")


def planned(data: bytes, chunk_bytes: int, dialect: Dialect | None = None) -> Plan:
    return plan_stream(source(data), dialect or Dialect(), io.BytesIO(data), chunk_bytes=chunk_bytes)


def pieces(data: bytes, plan: Plan) -> list[bytes]:
    return [data[chunk.start : chunk.end] for chunk in plan.chunks]


def test_a_file_is_split_after_the_header_at_line_starts_with_their_line_numbers() -> None:
    data = b"id,name\n1,a\n2,b\n3,c\n4,d\n"

    plan = planned(data, chunk_bytes=8)

    assert pieces(data, plan) == [b"1,a\n2,b\n", b"3,c\n4,d\n"]
    assert [chunk.first_line for chunk in plan.chunks] == [2, 4]
    assert [chunk.number for chunk in plan.chunks] == [0, 1]
    assert plan.chunks[-1].end is None
    assert plan.reason == "split into 2 chunks at record boundaries"


def test_a_quoted_newline_is_never_a_split_point() -> None:
    data = b'id,note\n1,"first\nsecond\nthird"\n2,"x"\n3,y\n'

    plan = planned(data, chunk_bytes=1)

    assert pieces(data, plan) == [b'1,"first\nsecond\nthird"\n', b'2,"x"\n', b"3,y\n"]
    assert [chunk.first_line for chunk in plan.chunks] == [2, 5, 6]


def test_doubled_quotes_and_crlf_keep_the_count_right() -> None:
    data = b'id,note\r\n1,"say ""hi""\r\nthere"\r\n2,b\r\n'

    plan = planned(data, chunk_bytes=1)

    assert pieces(data, plan) == [b'1,"say ""hi""\r\nthere"\r\n', b"2,b\r\n"]
    assert [chunk.first_line for chunk in plan.chunks] == [2, 4]


def test_a_lone_carriage_return_counts_as_a_line_as_the_reader_counts_it() -> None:
    data = b"id\r1\r2\n3\n4\n"

    plan = planned(data, chunk_bytes=4)

    assert pieces(data, plan) == [b"1\r2\n", b"3\n4\n"]
    assert [chunk.first_line for chunk in plan.chunks] == [2, 4]


def test_a_bom_stays_out_of_a_headerless_files_first_chunk() -> None:
    data = codecs.BOM_UTF8 + b"1,a\n2,b\n"

    plan = planned(data, chunk_bytes=2, dialect=Dialect(encoding="utf-8-sig", header=False))

    assert pieces(data, plan) == [b"1,a\n", b"2,b\n"]
    assert [chunk.first_line for chunk in plan.chunks] == [1, 2]


def test_a_quote_inside_an_unquoted_field_makes_the_file_one_chunk() -> None:
    data = b'id,item\n1,27" screen\n2,"a\nb"\n3,c\n'

    plan = planned(data, chunk_bytes=1)

    assert len(plan.chunks) == 1
    assert plan.chunks[0].start == 0
    assert "quote inside an unquoted field near byte 12" in plan.reason


@pytest.mark.parametrize(
    ("dialect", "member", "reason"),
    [
        (Dialect(), "inner/data.csv", "one chunk: zip member, cannot seek"),
        (Dialect(escapechar="\\"), None, "one chunk: escape character '\\\\'"),
        (Dialect(encoding="utf-16"), None, "one chunk: encoding utf-16 is not ASCII-compatible"),
        (Dialect(), None, "one chunk: 24 bytes, within the chunk size of 100"),
    ],
)
def test_files_that_cannot_or_need_not_be_split_are_one_chunk_and_the_plan_says_why(
    dialect: Dialect, member: str | None, reason: str
) -> None:
    data = b"id,name\n1,a\n2,b\n3,c\n4,d\n"[:24]

    plan = plan_file(source(data, member), dialect, chunk_bytes=100, conn_id=None)

    assert plan.reason.startswith(reason)
    assert [(chunk.start, chunk.end, chunk.first_line) for chunk in plan.chunks] == [(0, None, 1)]


def test_a_file_with_no_boundary_after_the_first_mark_is_one_chunk() -> None:
    data = b'id,note\n1,"' + b"x\n" * 50 + b'"\n'

    plan = planned(data, chunk_bytes=10)

    assert len(plan.chunks) == 1
    assert plan.reason == "one chunk: no record boundary after the first chunk size"


def test_ascii_compatible_encodings_are_the_ones_whose_bytes_can_be_counted() -> None:
    assert ascii_compatible("utf-8")
    assert ascii_compatible("utf-8-sig")
    assert ascii_compatible("cp1252")
    assert ascii_compatible("latin-1")
    assert not ascii_compatible("utf-16")
    assert not ascii_compatible("shift_jis")


@pytest.mark.parametrize("block_bytes", [4, 5, 6, 7, 9, 64])
def test_where_blocks_end_changes_nothing(block_bytes: int) -> None:
    # A header ending in a lone \r, a \r\n and quotes: each falls on a block edge for some size.
    data = b'name\r1,"a\r\nb"\r\n2,c\r\n3,d\r\n'

    plan = plan_stream(source(data), Dialect(), io.BytesIO(data), chunk_bytes=1, block_bytes=block_bytes)

    assert pieces(data, plan) == [b'1,"a\r\nb"\r\n', b"2,c\r\n", b"3,d\r\n"]
    assert [chunk.first_line for chunk in plan.chunks] == [2, 4, 5]
