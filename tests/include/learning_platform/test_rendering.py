"""Cells and tables as the email and the local report file show them, in English and Russian."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from html.parser import HTMLParser

import pytest

from include.learning_platform.rendering import format_cell, html_table, text_table
from include.learning_platform.report_layout import Column, Kind, Percent, Table
from include.learning_platform.texts import Language

EN, RU = Language.EN, Language.RU
NBSP = "\u00a0"

TABLE = Table(
    "Figures & more",
    (Column("Course", Kind.TEXT), Column("Submits", Kind.INTEGER), Column("Share", Kind.PERCENT)),
    (
        ("course-v1:A+B+C", 12345, Percent(0.5432)),
        ("<b>bold</b>", 7, None),
    ),
)


@pytest.mark.parametrize(
    ("value", "english", "russian"),
    [
        (date(2026, 11, 22), "2026-11-22", "2026-11-22"),
        (datetime(2026, 11, 22, 0, 5, tzinfo=UTC), "2026-11-22 00:05 UTC", "2026-11-22 00:05 UTC"),
        (12345, "12,345", f"12{NBSP}345"),
        (1234567, "1,234,567", f"1{NBSP}234{NBSP}567"),
        (0, "0", "0"),
        (2.5, "2.50", "2,50"),
        (1234.567, "1,234.57", f"1{NBSP}234,57"),
        (Percent(0.5432), "54.32%", f"54,32{NBSP}%"),
        (Percent(1.0), "100.00%", f"100,00{NBSP}%"),
        (Percent(0.0), "0.00%", f"0,00{NBSP}%"),
        (None, "—", "—"),
        ("course-v1:A+B+C", "course-v1:A+B+C", "course-v1:A+B+C"),
    ],
)
def test_cells_read_as_each_language_writes_them(value: object, english: str, russian: str) -> None:
    assert format_cell(value, EN) == english
    assert format_cell(value, RU) == russian


def test_a_timestamp_is_shown_in_utc_whatever_its_time_zone() -> None:
    moscow = timezone(timedelta(hours=3))

    assert format_cell(datetime(2026, 11, 22, 3, 5, tzinfo=moscow), EN) == "2026-11-22 00:05 UTC"


def test_a_share_is_a_percentage_but_a_plain_float_is_a_decimal() -> None:
    assert format_cell(Percent(0.25), EN) == "25.00%"
    assert format_cell(0.25, EN) == "0.25"


def test_html_table_has_a_caption_a_header_and_one_row_per_row() -> None:
    page = html_table(TABLE, EN)
    parsed = _parse(page)

    assert parsed.caption == "Figures & more"
    assert parsed.header == ["Course", "Submits", "Share"]
    assert parsed.rows == [["course-v1:A+B+C", "12,345", "54.32%"], ["<b>bold</b>", "7", "—"]]


def test_html_table_escapes_every_text() -> None:
    page = html_table(TABLE, EN)

    assert "<b>" not in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "Figures &amp; more" in page


def test_html_table_aligns_numbers_right_and_text_left_with_inline_styles_only() -> None:
    page = html_table(TABLE, RU)
    parsed = _parse(page)

    assert "<style" not in page
    assert "class=" not in page
    assert [("text-align:right" in style) for style in parsed.row_styles[0]] == [False, True, True]
    assert [("text-align:right" in style) for style in parsed.header_styles] == [False, True, True]
    assert parsed.rows[0][1] == f"12{NBSP}345"


def test_html_table_of_a_mixed_column_aligns_each_cell_by_its_value() -> None:
    table = Table("T", (Column("Metric", Kind.TEXT), Column("Value", None)), (("a", 3), ("b", "text")))
    parsed = _parse(html_table(table, EN))

    assert "text-align:right" in parsed.row_styles[0][1]
    assert "text-align:left" in parsed.row_styles[1][1]


def test_an_empty_html_table_says_there_is_nothing_in_one_row() -> None:
    empty = Table("Quarantine", (Column("Reason", Kind.TEXT), Column("Records", Kind.INTEGER)), ())
    parsed = _parse(html_table(empty, EN))

    assert parsed.header == ["Reason", "Records"]
    assert parsed.rows == [["—"]]
    assert 'colspan="2"' in html_table(empty, EN)


def test_text_table_has_the_title_then_aligned_columns_numbers_to_the_right() -> None:
    lines = text_table(TABLE, EN).splitlines()

    assert lines[0] == "Figures & more"
    assert re.fullmatch(r"Course\s+Submits\s+Share", lines[1])
    assert set(lines[2]) == {"-", " "}
    assert lines[3].startswith("course-v1:A+B+C")
    # numbers end in the same column as their header
    assert lines[3].index("12,345") + len("12,345") == lines[1].index("Submits") + len("Submits")
    assert lines[4].index("7") + 1 == lines[1].index("Submits") + len("Submits")
    assert lines[3].endswith("54.32%")
    assert lines[4].endswith("—")
    assert len(lines) == 5


def test_an_empty_text_table_shows_a_dash_under_its_header() -> None:
    empty = Table("Checks", (Column("Check", Kind.TEXT), Column("Result", Kind.TEXT)), ())

    assert text_table(empty, RU).splitlines() == ["Checks", "Check  Result", "-----  ------", "—"]


def test_a_line_break_inside_a_cell_does_not_break_the_text_table() -> None:
    table = Table("T", (Column("Course", Kind.TEXT),), (("evil\ncourse\tid",),))

    assert text_table(table, EN).splitlines()[3] == "evil course id"


class _TableParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.caption = ""
        self.header: list[str] = []
        self.header_styles: list[str] = []
        self.rows: list[list[str]] = []
        self.row_styles: list[list[str]] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        style = dict(attrs).get("style") or ""
        if tag == "caption":
            self._in = "caption"
        elif tag == "th":
            self._in = "th"
            self.header.append("")
            self.header_styles.append(style)
        elif tag == "tr" and self.header:
            self.rows.append([])
            self.row_styles.append([])
        elif tag == "td":
            self._in = "td"
            self.rows[-1].append("")
            self.row_styles[-1].append(style)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("caption", "th", "td"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "caption":
            self.caption += data
        elif self._in == "th":
            self.header[-1] += data
        elif self._in == "td":
            self.rows[-1][-1] += data


def _parse(page: str) -> _TableParser:
    parser = _TableParser()
    parser.feed(page)
    parser.close()
    return parser
