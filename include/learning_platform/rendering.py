"""Cells and tables of the report as text and HTML: shared by the email and the local report file.

One place decides how a number, a share or a moment reads in each language, so the email and
the file agree with each other cell for cell. The HTML uses inline styles only: mail clients
often drop ``<style>`` blocks.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime

from include.learning_platform.report_layout import Column, Kind, Table, kind_of
from include.learning_platform.texts import Language

EMPTY_CELL = "—"
NO_BREAK_SPACE = "\u00a0"
NUMERIC_KINDS = frozenset({Kind.INTEGER, Kind.DECIMAL, Kind.PERCENT})
COLUMN_GAP = "  "

_TABLE_STYLE = (
    "border-collapse:collapse;margin:0 0 20px 0;font-family:Arial,Helvetica,sans-serif;"
    "font-size:13px;color:#202124"
)
_CAPTION_STYLE = "caption-side:top;text-align:left;font-weight:bold;font-size:15px;padding:0 0 6px 0"
_CELL_STYLE = "border:1px solid #dadce0;padding:4px 8px;vertical-align:top"
_HEADER_STYLE = f"{_CELL_STYLE};background:#f1f3f4;font-weight:bold"
_NUMBER_STYLE = "text-align:right;white-space:nowrap"
_TEXT_STYLE = "text-align:left"


def format_cell(value: object, language: Language) -> str:
    """A cell as people read it: ``12,345`` / ``12 345``, ``54.32%`` / ``54,32 %``, dates ISO."""
    kind = kind_of(value)
    if kind is None:
        return EMPTY_CELL
    if kind is Kind.DATE:
        return value.isoformat()
    if kind is Kind.TIMESTAMP:
        return _utc(value).strftime("%Y-%m-%d %H:%M UTC")
    if kind is Kind.INTEGER:
        return _localized(f"{value:,}", language)
    if kind is Kind.DECIMAL:
        return _localized(f"{value:,.2f}", language)
    if kind is Kind.PERCENT:
        number = _localized(f"{value * 100:,.2f}", language)
        return f"{number}{NO_BREAK_SPACE}%" if language is Language.RU else f"{number}%"
    return str(value)


def html_table(table: Table, language: Language) -> str:
    """A ``<table>`` with the title as caption; every text escaped, numbers right-aligned."""
    header = "".join(
        f'<th style="{_HEADER_STYLE};{_align(column.kind)}">{html.escape(column.label)}</th>'
        for column in table.columns
    )
    if table.rows:
        rows = "\n".join(
            "<tr>"
            + "".join(
                f'<td style="{_CELL_STYLE};{_align(_cell_kind(column, value))}">'
                f"{html.escape(format_cell(value, language))}</td>"
                for column, value in zip(table.columns, row, strict=True)
            )
            + "</tr>"
            for row in table.rows
        )
    else:
        rows = (
            f'<tr><td colspan="{max(len(table.columns), 1)}" style="{_CELL_STYLE};{_TEXT_STYLE}">'
            f"{EMPTY_CELL}</td></tr>"
        )
    return (
        f'<table cellpadding="0" cellspacing="0" style="{_TABLE_STYLE}">\n'
        f'<caption style="{_CAPTION_STYLE}">{html.escape(table.title)}</caption>\n'
        f"<thead><tr>{header}</tr></thead>\n"
        f"<tbody>\n{rows}\n</tbody>\n"
        "</table>"
    )


def text_table(table: Table, language: Language) -> str:
    """The title on its own line, then the columns aligned with spaces (numbers to the right)."""
    header = [(_one_line(column.label), column.kind) for column in table.columns]
    body = [
        [
            (_one_line(format_cell(value, language)), _cell_kind(column, value))
            for column, value in zip(table.columns, row, strict=True)
        ]
        for row in table.rows
    ]
    if not body:
        body = [[(EMPTY_CELL if index == 0 else "", None) for index in range(len(table.columns))]]
    widths = [max(len(line[index][0]) for line in (header, *body)) for index in range(len(header))]
    lines = [_one_line(table.title), _line(header, widths), COLUMN_GAP.join("-" * width for width in widths)]
    lines.extend(_line(cells, widths) for cells in body)
    return "\n".join(lines)


def _line(cells: list[tuple[str, Kind | None]], widths: list[int]) -> str:
    padded = (
        text.rjust(width) if kind in NUMERIC_KINDS else text.ljust(width)
        for (text, kind), width in zip(cells, widths, strict=True)
    )
    return COLUMN_GAP.join(padded).rstrip()


def _localized(number: str, language: Language) -> str:
    """Python's ``1,234.56`` as the language writes it (Russian: ``1 234,56``, no-break space)."""
    if language is Language.RU:
        return number.replace(",", NO_BREAK_SPACE).replace(".", ",")
    return number


def _utc(moment: datetime) -> datetime:
    # The report's moments are aware; a naive one can only come from a UTC database column.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _cell_kind(column: Column, value: object) -> Kind | None:
    return column.kind if column.kind is not None else kind_of(value)


def _align(kind: Kind | None) -> str:
    return _NUMBER_STYLE if kind in NUMERIC_KINDS else _TEXT_STYLE


def _one_line(text: str) -> str:
    # A line break inside a cell (a course id is data) would break the columns.
    return " ".join(text.split()) if any(char in text for char in "\r\n\t\v\f") else text
