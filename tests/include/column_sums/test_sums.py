"""Summing every 10th column: exact sums and counts against the plain reading, quoting, chunking, errors."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devservices.csv_columns import write_csv
from include.column_sums.dialect import COMMA_SEPARATED, Dialect
from include.column_sums.model import Cell, ColumnSums, RaggedRow
from include.column_sums.problems import (
    CsvProblem,
    EmptyFile,
    MalformedCsv,
    NoHeader,
    TooFewColumns,
    UnreadableEncoding,
)
from include.column_sums.sums import sum_columns
from tests.include.column_sums.reference import reference

HEADER = ",".join(f"c{index}" for index in range(1, 21))


def summed(data: bytes, **options) -> ColumnSums:
    return sum_columns(io.BytesIO(data), **options)


def row(tenth: str, twentieth: str = "0", *, width: int = 20) -> str:
    cells = ["x"] * width
    cells[9], cells[19] = tenth, twentieth
    return ",".join(cells)


def csv_bytes(*lines: str, newline: str = "\n") -> bytes:
    return "".join(line + newline for line in lines).encode()


def assert_matches_reference(result: ColumnSums, data: bytes, dialect: Dialect = COMMA_SEPARATED) -> None:
    expected = reference(data, delimiter=dialect.delimiter, quote=dialect.quote, encoding=dialect.encoding)
    assert result.rows == expected.rows
    assert result.header_columns == expected.fields
    assert [(c.index, c.name) for c in result.columns] == [(c.index, c.name) for c in expected.columns]
    for found, want in zip(result.columns, expected.columns, strict=True):
        assert str(found.sum) == want.sum_text(), found.name
        assert (found.numeric, found.blank, found.non_numeric) == (want.numeric, want.blank, want.non_numeric)
        assert found.non_numeric_samples == tuple(Cell(*sample) for sample in want.samples)
    assert result.ragged_rows == len(expected.ragged)
    assert result.ragged_samples == tuple(RaggedRow(*ragged) for ragged in expected.ragged[:5])


# --- columns and sums -----------------------------------------------------------------------------


def test_the_10th_20th_and_30th_columns_are_summed_and_named_by_the_header() -> None:
    header = ",".join(f"name{index}" for index in range(1, 31))
    values = ",".join(str(index) for index in range(1, 31))
    result = summed(csv_bytes(header, values, values))
    assert [(column.index, column.name, column.sum) for column in result.columns] == [
        (10, "name10", Decimal(20)),
        (20, "name20", Decimal(40)),
        (30, "name30", Decimal(60)),
    ]
    assert result.rows == 2


def test_a_file_of_19_columns_has_only_its_10th_summed() -> None:
    header = ",".join(f"c{index}" for index in range(1, 20))
    result = summed(csv_bytes(header, ",".join(["1"] * 19)))
    assert [column.index for column in result.columns] == [10]


def test_sums_are_exact_where_floats_drift() -> None:
    lines = [row("0.1", "12345678901234.56")] * 10_000 + [row("-0.3", "0.000000000000000000000000001")]
    result = summed(csv_bytes(HEADER, *lines))
    tenth, twentieth = result.columns
    assert str(tenth.sum) == "999.7"  # sum(0.1 for 10,000 rows) as floats is 1000.0000000001588
    assert str(twentieth.sum) == "123456789012345600.000000000000000000000000001"


def test_the_sum_shows_the_most_fraction_digits_any_cell_had() -> None:
    result = summed(csv_bytes(HEADER, row("1.50", "5"), row("2", "-5"), row("0.125", "0")))
    assert [str(column.sum) for column in result.columns] == ["3.625", "0"]


def test_numbers_in_every_written_form_are_numeric() -> None:
    forms = ["-12", "+7", ".5", "7.", " 3 ", "\t4", "1.5e3", "2E-2", '"42.5"', '" -1 "', "-0.0", "00012"]
    result = summed(csv_bytes(HEADER, *(row(form) for form in forms)))
    assert result.columns[0].numeric == len(forms)
    assert str(result.columns[0].sum) == "1563.02"


def test_blank_cells_are_empty_or_spaces_or_missing_from_a_short_record() -> None:
    short = ",".join(["1"] * 12)  # no 20th field
    result = summed(csv_bytes(HEADER, row("", " "), row('""', "\t"), short))
    tenth, twentieth = result.columns
    assert (tenth.blank, tenth.numeric) == (2, 1)
    assert (twentieth.blank, twentieth.numeric) == (3, 0)
    assert result.ragged_rows == 1
    assert result.ragged_samples == (RaggedRow(row=4, line=4, fields=12),)


def test_non_numeric_cells_are_counted_and_the_first_few_shown_with_their_row_and_line() -> None:
    junk = ["n/a", "12,5", "1 000", "NaN", "Infinity", "1.2.3", "--1", "١٢", "0x1F", "1e", "€5"]
    lines = [row("1")] + [row(value if "," not in value else f'"{value}"') for value in junk]
    result = summed(csv_bytes(HEADER, *lines), samples=3)
    tenth = result.columns[0]
    assert (tenth.numeric, tenth.non_numeric) == (1, len(junk))
    assert tenth.non_numeric_samples == (Cell(3, 3, "n/a"), Cell(4, 4, "12,5"), Cell(5, 5, "1 000"))


def test_quoted_fields_may_hold_the_delimiter_a_quote_and_line_breaks() -> None:
    cells = [f'"a,b{index}"' for index in range(1, 21)]
    cells[4] = '"two\nlines, and ""quotes"""'
    cells[9], cells[19] = '"1,5"', '"2\n"'
    lines = [",".join(cells), row("10", "20"), ",".join(cells)]
    result = summed(csv_bytes(HEADER, *lines))
    tenth, twentieth = result.columns
    assert (str(tenth.sum), tenth.numeric, tenth.non_numeric) == ("10", 1, 2)
    # Only spaces and tabs around a number are ignored: a line break in a cell is content.
    assert (str(twentieth.sum), twentieth.numeric, twentieth.non_numeric) == ("20", 1, 2)
    # The first record spans lines 2 to 4 (two quoted line breaks): the third starts on line 6.
    assert tenth.non_numeric_samples == (Cell(2, 2, "1,5"), Cell(4, 6, "1,5"))


def test_crlf_line_ends_and_blank_lines_and_a_missing_final_line_break() -> None:
    data = csv_bytes(HEADER, "", row("1.5", "2"), "", row("2.5", "-2"), newline="\r\n") + row("1").encode()
    result = summed(data)
    assert result.rows == 3
    assert [str(column.sum) for column in result.columns] == ["5.0", "0"]
    assert_matches_reference(result, data)


def test_a_header_may_follow_blank_lines_and_hold_numbers_among_names() -> None:
    header = "region," + ",".join(str(year) for year in range(2001, 2020))
    result = summed(csv_bytes("", "", header, row("7")))
    assert (result.columns[0].name, result.columns[0].sum) == ("2009", Decimal(7))


@pytest.mark.parametrize("chunk_bytes", [1, 2, 7, 64, 1000, 1 << 20])
def test_the_result_does_not_depend_on_where_blocks_are_cut(chunk_bytes: int, tmp_path: Path) -> None:
    written = write_csv(
        tmp_path / "file.csv", rows=100, columns=25, seed=chunk_bytes, crlf=chunk_bytes % 2 == 0
    )
    data = Path(written.path).read_bytes()
    assert_matches_reference(summed(data, chunk_bytes=chunk_bytes), data)


def test_a_generated_file_sums_to_what_its_generator_expects(tmp_path: Path) -> None:
    written = write_csv(tmp_path / "file.csv", rows=20_000, columns=31, seed=7, junk_share=0.01)
    with open(written.path, "rb") as stream:
        result = sum_columns(stream, chunk_bytes=64 * 1024)
    assert result.rows == 20_000
    assert result.bytes_read == written.bytes
    found = [(str(c.sum), c.numeric, c.blank, c.non_numeric) for c in result.columns]
    assert found == [(e.sum, e.numeric, e.blank, e.non_numeric) for e in written.expected]


def test_worker_processes_give_the_result_of_one_process(tmp_path: Path) -> None:
    written = write_csv(tmp_path / "file.csv", rows=20_000, columns=31, seed=9, junk_share=0.01, crlf=True)
    results = []
    for processes in (1, 2):
        with open(written.path, "rb") as stream:
            results.append(sum_columns(stream, chunk_bytes=32 * 1024, processes=processes).to_json())
    assert results[0] == results[1]
    assert results[0]["columns"][0]["non_numeric_samples"][0]["row"] > 1


def test_worker_processes_report_an_unclosed_quote_on_its_line() -> None:
    data = csv_bytes(HEADER, *(row(str(index)) for index in range(2000)), '1,"2', row("3"))
    with pytest.raises(MalformedCsv, match="opened on line 2002 is never closed"):
        summed(data, chunk_bytes=1024, processes=2)


class TrickleStream(io.RawIOBase):
    """A stream that answers at most ``most`` bytes a read, as a network body can."""

    def __init__(self, data: bytes, most: int) -> None:
        self.data, self.most, self.at = data, most, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        size = min(len(buffer), self.most, len(self.data) - self.at)
        buffer[:size] = self.data[self.at : self.at + size]
        self.at += size
        return size


def test_short_reads_of_a_network_stream_are_gathered_into_blocks() -> None:
    data = csv_bytes(HEADER, *(row(str(index), "0.5") for index in range(1, 501)))
    result = sum_columns(TrickleStream(data, most=5), chunk_bytes=4096)
    assert [str(column.sum) for column in result.columns] == ["125250", "250.0"]


def test_memory_stays_within_a_few_blocks_whatever_the_file(tmp_path: Path) -> None:
    written = write_csv(tmp_path / "file.csv", rows=60_000, columns=30, seed=3)  # 14 MB
    chunk_bytes = 256 * 1024
    with open(written.path, "rb", buffering=0) as stream:
        tracemalloc.start()
        try:
            sum_columns(stream, chunk_bytes=chunk_bytes)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 12 * chunk_bytes < written.bytes / 4


def test_the_result_is_json_with_decimals_as_strings() -> None:
    result = summed(csv_bytes(HEADER, row("0.1", "x"), row("0.2", "3")))
    document = json.loads(json.dumps(result.to_json()))
    assert document["columns"][0] == {
        "index": 10,
        "name": "c10",
        "sum": "0.3",
        "numeric_cells": 2,
        "blank_cells": 0,
        "non_numeric_cells": 0,
        "non_numeric_samples": [],
    }
    assert document["columns"][1]["non_numeric_samples"] == [{"row": 2, "line": 2, "value": "x"}]
    assert (document["rows"], document["ragged_rows"]) == (2, 0)


# --- against the plain reading, on any file ---------------------------------------------------------


def _plain_number(mantissa: int, scale: int) -> str:
    return format(Decimal(mantissa).scaleb(-scale), "f")


numbers = st.one_of(
    st.builds(_plain_number, st.integers(-(10**8), 10**8), st.integers(0, 8)),
    st.builds(_plain_number, st.integers(-(10**30), 10**30), st.integers(0, 30)),
    st.builds(lambda m, s: str(Decimal(m).scaleb(s)), st.integers(-999, 999), st.integers(-12, 12)),
    st.sampled_from(["+1", ".5", "-.5", "5.", " 7 ", "\t-8", "1e3", "-0", "007", "1E+2"]),
)
junk = st.one_of(
    st.text(alphabet="ab,;|\t\"'\n é-.+1", max_size=6),
    st.sampled_from(["n/a", "NaN", "inf", "1.2.3", "--1", "+-1", "1e", ".", "-", "1 2", "½"]),
)
cells = st.one_of(numbers, numbers, st.sampled_from(["", " ", "\t"]), junk)


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[bytes, Dialect, int]:
    width = draw(st.integers(10, 31))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    quote = draw(st.sampled_from(['"', "'"]))
    names = [f"n{index}" for index in range(1, width + 1)]
    rows = draw(
        st.lists(
            st.lists(cells, min_size=width, max_size=width).flatmap(
                lambda cells_: st.sampled_from(
                    [cells_, cells_, cells_, cells_[: width // 2], [*cells_, "extra"]]
                )
            ),
            max_size=40,
        )
    )
    out = io.StringIO()
    writer = csv.writer(
        out,
        delimiter=delimiter,
        quotechar=quote,
        quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])),
        lineterminator=draw(st.sampled_from(["\n", "\r\n"])),
    )
    writer.writerow(names)
    writer.writerows(row_ for row_ in rows if row_ != [""])  # [""] is written as a blank line
    text = out.getvalue()
    if draw(st.booleans()):
        text = text.removesuffix("\n").removesuffix("\r")
    return text.encode(), Dialect(delimiter=delimiter, quote=quote), draw(st.integers(1, 300))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv_files())
def test_any_file_sums_as_the_plain_reading_does(case: tuple[bytes, Dialect, int]) -> None:
    data, dialect, chunk_bytes = case
    assert_matches_reference(summed(data, dialect=dialect, chunk_bytes=chunk_bytes), data, dialect)


# --- files that cannot be summed --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "problem", "says"),
    [
        (b"", EmptyFile, "the file is empty"),
        (b"\n\r\n\n", EmptyFile, "the file is empty"),
        (b"a,b,c\n1,2,3\n", TooFewColumns, "has 3 column(s)"),
        (b"a;b;c;d;e;f;g;h;i;j;k\n", TooFewColumns, "check the delimiter"),
        (csv_bytes(",".join(["1"] * 12), ",".join(["2"] * 12)), NoHeader, "add a header row"),
        (csv_bytes("," * 11), NoHeader, "no column names"),
        ("\ufeffa,b".encode("utf-16"), UnreadableEncoding, "UTF-16 or UTF-32"),
        (HEADER.encode("utf-16-le"), UnreadableEncoding, "NUL bytes"),
        ("café,".encode("cp1252") + HEADER.encode(), UnreadableEncoding, "not valid utf-8"),
        (csv_bytes(HEADER, row("1"), '1,"open') + b"2,3\n", MalformedCsv, "opened on line 3 is never closed"),
    ],
)
def test_a_file_that_cannot_be_summed_raises_a_problem_that_says_what_to_do(
    data: bytes, problem: type[CsvProblem], says: str
) -> None:
    with pytest.raises(problem) as raised:
        summed(data)
    assert says in str(raised.value)
    assert raised.value.to_json() == {"code": problem.code, "message": str(raised.value)}


def test_a_quote_never_closed_fails_once_the_record_passes_its_limit_not_at_the_end() -> None:
    data = csv_bytes(HEADER, row("1"), '1,"2', *(row("3") for _ in range(1000)))
    with pytest.raises(MalformedCsv, match="the record starting on line 3 is longer than 4,096 bytes"):
        summed(data, chunk_bytes=1024, max_record_bytes=4096)


def test_a_cp1252_file_is_read_when_its_encoding_is_given() -> None:
    data = csv_bytes("café," + HEADER, ",".join(["x"] * 9 + ["é"] + ["x"] * 11)).decode().encode("cp1252")
    result = summed(data, dialect=Dialect(encoding="cp1252"))
    assert result.columns[0].name == "c9"
    assert result.columns[0].non_numeric_samples == (Cell(2, 2, "é"),)


@pytest.mark.parametrize("encoding", ["utf-16", "shift_jis", "gb18030"])
def test_encodings_whose_bytes_cannot_be_split_on_are_refused(encoding: str) -> None:
    with pytest.raises(UnreadableEncoding, match="convert the file to UTF-8"):
        summed(csv_bytes(HEADER, row("1")), dialect=Dialect(encoding=encoding))
