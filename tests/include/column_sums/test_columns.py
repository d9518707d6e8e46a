"""Which columns are summed, and when a first record is not a header."""

from __future__ import annotations

import pytest

from include.column_sums.columns import Column, read_header
from include.column_sums.dialect import COMMA_SEPARATED, Dialect
from include.column_sums.problems import NoHeader, TooFewColumns, UnreadableEncoding


def header(*names: str, dialect: Dialect = COMMA_SEPARATED) -> tuple[int, tuple[Column, ...]]:
    found = read_header(dialect.delimiter.join(names).encode(), dialect, "utf-8")
    return found.fields, found.columns


def names(count: int) -> list[str]:
    return [f"c{index}" for index in range(1, count + 1)]


@pytest.mark.parametrize(
    ("count", "summed"),
    [(10, [10]), (19, [10]), (20, [10, 20]), (35, [10, 20, 30])],
)
def test_every_10th_column_counting_from_1_is_summed(count: int, summed: list[int]) -> None:
    fields, columns = header(*names(count))
    assert fields == count
    assert columns == tuple(Column(index, f"c{index}") for index in summed)


def test_fewer_than_10_columns_is_an_error_that_suggests_the_delimiter() -> None:
    with pytest.raises(TooFewColumns, match=r"has 9 column\(s\) \(','-delimited\).*check the delimiter"):
        header(*names(9))


def test_a_semicolon_file_read_with_its_delimiter_has_its_columns() -> None:
    assert header(*names(10), dialect=Dialect(delimiter=";"))[1] == (Column(10, "c10"),)


@pytest.mark.parametrize(
    "first_record",
    [
        [str(index) for index in range(1, 13)],
        ["1.5", "-2", "", " 3 ", *["0"] * 8],
        [""] * 12,
    ],
)
def test_a_first_record_of_numbers_or_blanks_means_the_file_has_no_header(first_record: list[str]) -> None:
    with pytest.raises(NoHeader, match="add a header row"):
        header(*first_record)


def test_a_header_may_name_columns_with_numbers_or_leave_some_unnamed_or_repeat_a_name() -> None:
    _, columns = header("region", *[str(year) for year in range(2001, 2019)], "")
    assert columns == (Column(10, "2009"), Column(20, ""))
    _, columns = header(*["same"] * 20)
    assert columns == (Column(10, "same"), Column(20, "same"))


def test_a_quoted_name_may_hold_the_delimiter() -> None:
    record = ",".join([*names(9), '"net, EUR"'])
    assert read_header(record.encode(), COMMA_SEPARATED, "utf-8").columns == (Column(10, "net, EUR"),)


def test_a_header_not_in_the_files_encoding_says_which_byte() -> None:
    record = ",".join(["Prix €", *names(9)]).encode("cp1252")
    with pytest.raises(UnreadableEncoding, match="not valid utf-8 \\(byte 0x80 at offset 5\\)"):
        read_header(record, COMMA_SEPARATED, "utf-8")
    assert read_header(record, COMMA_SEPARATED, "cp1252").columns == (Column(10, "c9"),)
