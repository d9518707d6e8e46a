"""The day's report in Google Sheets: a history worksheet with one row per date, and a summary worksheet.

Reruns and backfills converge on the same sheet. The history row is keyed by its date: a rerun
updates the row in place, a backfilled date is inserted where it sorts, and stray duplicates of
the date are removed. The summary worksheet shows the latest date in the history, rewritten
whole: a backfill publishing an older date after a newer one leaves it alone (publishers take
turns under ``warehouse.lock_report``, so each reads the history the one before it wrote).
Values go in typed (numbers, dates as serial numbers, text never parsed), so a course name
starting with ``=`` stays text.

Requests are few on purpose (the Sheets API allows 60 writes a minute per user): one read and
one atomic ``batchUpdate`` for the history row, then clear, format and values for the summary.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import gspread
from gspread.exceptions import NoValidUrlKeyFound
from gspread.utils import ValueInputOption, ValueRenderOption, extract_id_from_url

from include.common.google_sheets import call_with_backoff, service_account_email
from include.common.http import RetryPolicy
from include.learning_platform.report_layout import (
    Column,
    Kind,
    history_columns,
    history_row,
    kind_of,
    notices,
    summary_tables,
)
from include.learning_platform.report_model import DailyReport, DayStats
from include.learning_platform.texts import Texts

log = logging.getLogger(__name__)

T = TypeVar("T")

# publish_report has no task retries, so this is all the waiting the report email does for the
# sheet: Sheets' quotas are per minute (a 429 clears within 60 s) and Google's 5xx are brief.
# Past two minutes, the email is worth more on time saying the sheet was not updated.
DEFAULT_POLICY = RetryPolicy(attempts=5, max_wait_s=30.0, max_retry_after_s=60.0, max_elapsed_s=120.0)

SERIAL_EPOCH = date(1899, 12, 30)  # day 0 of Sheets' serial dates (as in Lotus 1-2-3 and Excel)
HEADER_ROWS = 1  # the history worksheet's header; data rows start below it
MIN_KEY_LENGTH = 20  # real keys are 44 characters; a shorter word is most likely a title
KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]+")

NUMBER_FORMATS: dict[Kind, dict[str, str]] = {
    Kind.DATE: {"type": "DATE", "pattern": "yyyy-mm-dd"},
    Kind.TIMESTAMP: {"type": "DATE_TIME", "pattern": "yyyy-mm-dd hh:mm"},
    Kind.PERCENT: {"type": "PERCENT", "pattern": "0.00%"},
    Kind.DECIMAL: {"type": "NUMBER", "pattern": "0.00"},
    Kind.INTEGER: {"type": "NUMBER", "pattern": "#,##0"},
}

NEW_HISTORY_ROWS = 1000  # Google's own default for a new sheet
NEW_SUMMARY_ROWS = 100
NEW_SUMMARY_COLUMNS = 8
TITLE_FONT_SIZE = 14
ALERT_RED = {"red": 0.69, "green": 0.0, "blue": 0.125}  # #b00020, as in the HTML report
FIRST_COLUMN_PIXELS = 340  # labels such as "Successful submits per user" fit on one line
OTHER_COLUMN_PIXELS = 150


@dataclass(frozen=True, slots=True)
class SheetsTarget:
    """Where the report goes: a spreadsheet (its key, or its URL) and two worksheet titles."""

    spreadsheet: str
    history_worksheet: str
    summary_worksheet: str

    def __post_init__(self) -> None:
        spreadsheet_key(self.spreadsheet)  # a title or a typo fails here, before any request
        if not self.history_worksheet.strip() or not self.summary_worksheet.strip():
            raise ValueError("the history and summary worksheets need titles")
        if self.history_worksheet == self.summary_worksheet:
            raise ValueError(
                f"history and summary need different worksheets, both are {self.history_worksheet!r}"
            )

    @property
    def key(self) -> str:
        return spreadsheet_key(self.spreadsheet)


def spreadsheet_key(value: str) -> str:
    """The spreadsheet key from a key or a browser URL.

    Opening by title is not supported: it needs the Drive API, and titles are not unique.
    """
    value = value.strip()
    if "/" in value or "=" in value:
        try:
            return extract_id_from_url(value)
        except NoValidUrlKeyFound:
            raise ValueError(
                f"{value!r} is not a Google Sheets URL (expected .../spreadsheets/d/<key>/...)"
            ) from None
    if KEY_PATTERN.fullmatch(value) and len(value) >= MIN_KEY_LENGTH:
        return value
    raise ValueError(
        f"{value!r} is neither a spreadsheet key nor its URL; opening a spreadsheet by title is not "
        "supported: give the key (the long id in the spreadsheet's URL) or the URL itself"
    )


def publish_to_sheets(
    client: gspread.Client,
    target: SheetsTarget,
    report: DailyReport,
    texts: Texts,
    *,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> str:
    """Publish the day's report; returns the URL of the summary worksheet.

    The policy's ``max_elapsed_s`` bounds the retrying of the whole publication, not of each step.
    """
    key = target.key
    account = service_account_email(client)
    deadline = None if policy.max_elapsed_s is None else time.monotonic() + policy.max_elapsed_s

    def step(operation: Callable[[], T], what: str) -> T:
        budget = policy
        if deadline is not None:
            budget = replace(policy, max_elapsed_s=max(deadline - time.monotonic(), 0.0))
        return call_with_backoff(operation, what=what, policy=budget, account=account)

    spreadsheet = step(lambda: client.open_by_key(key), f"open spreadsheet {key}")
    history, summary = step(lambda: _worksheets(spreadsheet, target, texts), "find or add the worksheets")
    # Each step reads what it decides on at every attempt: a failed insert may have landed.
    row, latest = step(
        lambda: _write_history_row(history, report.stats, texts),
        f"write {report.day} to worksheet '{history.title}'",
    )
    if latest > report.day:
        log.info("summary '%s' left showing %s, a later date than %s", summary.title, latest, report.day)
    else:
        step(lambda: _write_summary(summary, report, texts), f"write worksheet '{summary.title}'")
    log.info("report for %s published to spreadsheet %s: history row %d", report.day, key, row)
    return summary.url


# --- worksheets --------------------------------------------------------------------------------


def _worksheets(
    spreadsheet: gspread.Spreadsheet, target: SheetsTarget, texts: Texts
) -> tuple[gspread.Worksheet, gspread.Worksheet]:
    found = {sheet.title: sheet for sheet in spreadsheet.worksheets()}
    sizes = {
        target.history_worksheet: (NEW_HISTORY_ROWS, len(history_columns(texts))),
        target.summary_worksheet: (NEW_SUMMARY_ROWS, NEW_SUMMARY_COLUMNS),
    }
    missing = [title for title in sizes if title not in found]
    if missing:
        # addSheet fails when the sheet exists, so a retry starts again from the listing above.
        answer = spreadsheet.batch_update(
            {"requests": [_add_sheet(title, *sizes[title]) for title in missing]}
        )
        for title, reply in zip(missing, answer["replies"], strict=True):
            properties = reply["addSheet"]["properties"]
            found[title] = gspread.Worksheet(spreadsheet, properties, spreadsheet.id, spreadsheet.client)
        log.info("added worksheets %s to spreadsheet %s", missing, spreadsheet.id)
    return found[target.history_worksheet], found[target.summary_worksheet]


def _add_sheet(title: str, rows: int, columns: int) -> dict[str, Any]:
    grid = {"rowCount": rows, "columnCount": columns}
    return {"addSheet": {"properties": {"title": title, "gridProperties": grid}}}


# --- history: one row per date -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Placement:
    """Where the day's history row goes (0-based row indexes, the header being row 0)."""

    row: int
    insert: bool  # the date is not in the sheet yet: a row is inserted at ``row``
    duplicates: tuple[int, ...] = ()  # further rows holding the date, to delete


def place_date(column_a: Sequence[object], day: date) -> Placement:
    """Decide where ``day`` goes, given column A's unformatted values (header included)."""
    dated = [
        (index, found)
        for index, value in enumerate(column_a)
        if index >= HEADER_ROWS and (found := cell_date(value)) is not None
    ]
    same = [index for index, found in dated if found == day]
    if same:
        return Placement(same[0], insert=False, duplicates=tuple(same[1:]))
    later = [index for index, found in dated if found > day]
    if later:
        return Placement(later[0], insert=True)
    # After the last date rather than at the bottom: notes below the table stay below it.
    return Placement(dated[-1][0] + 1 if dated else HEADER_ROWS, insert=True)


def cell_date(value: object) -> date | None:
    """The date in a column A cell: a serial number, or ISO text left by some other tool."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return SERIAL_EPOCH + timedelta(days=int(value))
        except (OverflowError, ValueError):  # far outside any date, or NaN
            return None
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


# The header is rewritten in the run's language, bold; data rows get values only, formats by column.
_HEADER_FIELDS = "userEnteredValue,userEnteredFormat.textFormat.bold"
_DATA_FORMAT_FIELDS = "userEnteredFormat.numberFormat,userEnteredFormat.textFormat.bold"


def _write_history_row(worksheet: gspread.Worksheet, stats: DayStats, texts: Texts) -> tuple[int, date]:
    """Write the day's row and the header in one atomic batchUpdate.

    Returns the row's 1-based number and the latest date the history then holds.
    """
    column_a = worksheet.col_values(1, value_render_option=ValueRenderOption.unformatted)
    placement = place_date(column_a, stats.day)
    dates = [found for value in column_a[HEADER_ROWS:] if (found := cell_date(value)) is not None]
    columns = history_columns(texts)
    sheet_id = worksheet.id
    requests: list[dict[str, Any]] = []
    if placement.insert:
        requests.append(_insert_row(sheet_id, placement.row))
    requests.append(_grid_properties(worksheet, frozen_rows=HEADER_ROWS, columns=len(columns)))
    requests.append(
        _update_cells(sheet_id, 0, [_header_cell(column.label) for column in columns], _HEADER_FIELDS)
    )
    requests.append(
        _update_cells(
            sheet_id, placement.row, [_cell(v) for v in history_row(stats, texts)], "userEnteredValue"
        )
    )
    # Bottom-up, so that each deletion leaves the indexes of the ones still to come unchanged.
    requests += [_delete_row(sheet_id, index) for index in sorted(placement.duplicates, reverse=True)]
    requests += list(_column_formats(sheet_id, columns))
    worksheet.spreadsheet.batch_update({"requests": requests})
    action = "inserted" if placement.insert else "updated"
    log.info(
        "history: %s row %d for %s (%d duplicate rows removed)",
        action,
        placement.row + 1,
        stats.day,
        len(placement.duplicates),
    )
    return placement.row + 1, max([*dates, stats.day])


def _header_cell(label: str) -> dict[str, Any]:
    return {"userEnteredValue": {"stringValue": label}, "userEnteredFormat": {"textFormat": {"bold": True}}}


def _insert_row(sheet_id: int, index: int) -> dict[str, Any]:
    # Inherit from the row above unless that is the header (bold); the formats are set anyway.
    return {
        "insertDimension": {
            "range": {"sheetId": sheet_id, "dimension": "ROWS", "startIndex": index, "endIndex": index + 1},
            "inheritFromBefore": index > HEADER_ROWS,
        }
    }


def _delete_row(sheet_id: int, index: int) -> dict[str, Any]:
    return {
        "deleteDimension": {
            "range": {"sheetId": sheet_id, "dimension": "ROWS", "startIndex": index, "endIndex": index + 1}
        }
    }


def _column_formats(sheet_id: int, columns: Sequence[Column]) -> Iterator[dict[str, Any]]:
    """Number formats of the data rows (all of them, old ones too), one request per run of a kind."""
    for start, end, kind in _runs([column.kind for column in columns]):
        yield _repeat_cell(
            {
                "sheetId": sheet_id,
                "startRowIndex": HEADER_ROWS,
                "startColumnIndex": start,
                "endColumnIndex": end,
            },
            _format(kind, bold=False),
            _DATA_FORMAT_FIELDS,
        )


# --- summary: the day's tables, rewritten whole ------------------------------------------------


@dataclass(frozen=True, slots=True)
class SummaryLayout:
    """The summary worksheet's cells and where they need formatting (0-based indexes)."""

    values: list[list[object]]  # as the values API takes them
    notice_rows: range  # warnings right under the title
    bold_blocks: tuple[tuple[int, int, int], ...]  # (first row, end row, width): table titles+headers
    number_cells: tuple[tuple[int, int, Kind], ...]  # (row, column, kind) of non-empty typed cells

    @property
    def width(self) -> int:
        return max(len(row) for row in self.values)


def summary_layout(report: DailyReport, texts: Texts) -> SummaryLayout:
    """Title, warnings, then each summary table after a blank row: title, header, rows."""
    values: list[list[object]] = [[f"{texts.report_title} — {report.day.isoformat()}"]]
    warnings = notices(report, texts)
    values += [[warning] for warning in warnings]
    bold: list[tuple[int, int, int]] = []
    number_cells: list[tuple[int, int, Kind]] = []
    for table in summary_tables(report, texts):
        values.append([])
        bold.append((len(values), len(values) + 2, len(table.columns)))
        values += [[table.title], [column.label for column in table.columns]]
        for row in table.rows:
            for column_index, (column, value) in enumerate(zip(table.columns, row, strict=True)):
                kind = column.kind or kind_of(value)
                if value is not None and kind in NUMBER_FORMATS:
                    number_cells.append((len(values), column_index, kind))
            values.append([sheet_value(value) for value in row])
    return SummaryLayout(values, range(1, 1 + len(warnings)), tuple(bold), tuple(number_cells))


def _write_summary(worksheet: gspread.Worksheet, report: DailyReport, texts: Texts) -> None:
    # Clear, format, write: each call is idempotent, so a retry simply runs all three again.
    layout = summary_layout(report, texts)
    worksheet.clear()
    worksheet.spreadsheet.batch_update({"requests": _summary_formats(worksheet, layout)})
    worksheet.update(layout.values, "A1", value_input_option=ValueInputOption.raw)
    log.info("summary: wrote %d rows to worksheet '%s'", len(layout.values), worksheet.title)


def _summary_formats(worksheet: gspread.Worksheet, layout: SummaryLayout) -> list[dict[str, Any]]:
    sheet_id = worksheet.id
    frozen = 1 + len(layout.notice_rows)  # the title and the warnings stay in view while scrolling
    requests = [
        _grid_properties(worksheet, frozen_rows=frozen, columns=layout.width, rows=len(layout.values)),
        # Yesterday's bold rows sit elsewhere: start from no formatting at all.
        _repeat_cell({"sheetId": sheet_id}, {}, "userEnteredFormat"),
        _repeat_cell(
            _grid_range(sheet_id, 0, 1, 0, 1),
            {"textFormat": {"bold": True, "fontSize": TITLE_FONT_SIZE}},
            "userEnteredFormat.textFormat",
        ),
    ]
    if layout.notice_rows:
        alert = {"textFormat": {"bold": True, "foregroundColorStyle": {"rgbColor": ALERT_RED}}}
        rows = layout.notice_rows
        requests.append(
            _repeat_cell(
                _grid_range(sheet_id, rows.start, rows.stop, 0, 1), alert, "userEnteredFormat.textFormat"
            )
        )
    for first, end, width in layout.bold_blocks:
        requests.append(
            _repeat_cell(
                _grid_range(sheet_id, first, end, 0, width),
                {"textFormat": {"bold": True}},
                "userEnteredFormat.textFormat.bold",
            )
        )
    for column, first, end, kind in _cell_runs(layout.number_cells):
        requests.append(
            _repeat_cell(
                _grid_range(sheet_id, first, end, column, column + 1),
                {"numberFormat": NUMBER_FORMATS[kind]},
                "userEnteredFormat.numberFormat",
            )
        )
    requests += [
        _column_width(sheet_id, 0, 1, FIRST_COLUMN_PIXELS),
        _column_width(sheet_id, 1, layout.width, OTHER_COLUMN_PIXELS),
    ]
    return requests


def _cell_runs(cells: Sequence[tuple[int, int, Kind]]) -> list[tuple[int, int, int, Kind]]:
    """Vertical runs of same-kind cells as (column, first row, end row, kind): fewer requests."""
    runs: list[tuple[int, int, int, Kind]] = []
    for row, column, kind in sorted(cells, key=lambda cell: (cell[1], cell[0])):
        if runs and runs[-1][0] == column and runs[-1][2] == row and runs[-1][3] == kind:
            runs[-1] = (column, runs[-1][1], row + 1, kind)
        else:
            runs.append((column, row, row + 1, kind))
    return runs


# --- cells and requests ------------------------------------------------------------------------


def serial_day(day: date) -> int:
    return (day - SERIAL_EPOCH).days


def serial_time(moment: datetime) -> float:
    """A serial date-time in UTC (Sheets has no time zones: the header says UTC)."""
    if moment.tzinfo is None:
        raise ValueError(f"report timestamps must be timezone-aware, got {moment.isoformat()}")
    utc = moment.astimezone(UTC)
    midnight = utc.replace(hour=0, minute=0, second=0, microsecond=0)
    return serial_day(utc.date()) + (utc - midnight).total_seconds() / 86_400


def sheet_value(value: object) -> object:
    """A report cell as Sheets stores it: numbers for dates and shares, "" for an empty cell."""
    kind_of(value)  # refuses what a report cell may not hold (booleans, unknown types)
    if value is None:
        return ""
    if isinstance(value, datetime):  # before date: a datetime is a date too
        return serial_time(value)
    if isinstance(value, date):
        return serial_day(value)
    if isinstance(value, float):
        return float(value)  # a Percent becomes a plain share; its cell format shows the %
    return value


def _cell(value: object) -> dict[str, Any]:
    """CellData for updateCells: typed values, so text is never parsed as a formula."""
    if value is None:
        return {}  # with "userEnteredValue" in the field mask, this empties the cell
    stored = sheet_value(value)
    if isinstance(stored, str):
        return {"userEnteredValue": {"stringValue": stored}}
    return {"userEnteredValue": {"numberValue": stored}}


def _format(kind: Kind | None, *, bold: bool) -> dict[str, Any]:
    # A kind without a number format (text) gets none: the field mask then clears any old one.
    cell: dict[str, Any] = {"textFormat": {"bold": bold}}
    if kind in NUMBER_FORMATS:
        cell["numberFormat"] = NUMBER_FORMATS[kind]
    return cell


def _runs(kinds: Sequence[Kind | None]) -> Iterator[tuple[int, int, Kind | None]]:
    """Consecutive equal kinds as (start, end, kind) column ranges."""
    start = 0
    for index in range(1, len(kinds) + 1):
        if index == len(kinds) or kinds[index] != kinds[start]:
            yield start, index, kinds[start]
            start = index


def _grid_range(
    sheet_id: int, first_row: int, end_row: int, first_column: int, end_column: int
) -> dict[str, int]:
    return {
        "sheetId": sheet_id,
        "startRowIndex": first_row,
        "endRowIndex": end_row,
        "startColumnIndex": first_column,
        "endColumnIndex": end_column,
    }


def _repeat_cell(grid_range: dict[str, int], cell_format: dict[str, Any], fields: str) -> dict[str, Any]:
    return {"repeatCell": {"range": grid_range, "cell": {"userEnteredFormat": cell_format}, "fields": fields}}


def _update_cells(sheet_id: int, row: int, cells: list[dict[str, Any]], fields: str) -> dict[str, Any]:
    return {
        "updateCells": {
            "start": {"sheetId": sheet_id, "rowIndex": row, "columnIndex": 0},
            "rows": [{"values": cells}],
            "fields": fields,
        }
    }


def _grid_properties(
    worksheet: gspread.Worksheet, *, frozen_rows: int, columns: int, rows: int = 0
) -> dict[str, Any]:
    """Freeze the top rows, and grow (never shrink) the grid to what is about to be written."""
    grid: dict[str, int] = {"frozenRowCount": frozen_rows}
    if worksheet.col_count < columns:
        grid["columnCount"] = columns
    if worksheet.row_count < rows:
        grid["rowCount"] = rows
    return {
        "updateSheetProperties": {
            "properties": {"sheetId": worksheet.id, "gridProperties": grid},
            "fields": ",".join(f"gridProperties.{name}" for name in grid),
        }
    }


def _column_width(sheet_id: int, first: int, end: int, pixels: int) -> dict[str, Any]:
    return {
        "updateDimensionProperties": {
            "range": {"sheetId": sheet_id, "dimension": "COLUMNS", "startIndex": first, "endIndex": end},
            "properties": {"pixelSize": pixels},
            "fields": "pixelSize",
        }
    }
