"""A stateful fake of the Google Sheets v4 API and Google's OAuth token endpoint, at the HTTP level.

Built on ``responses``, so the real google-auth and gspread code runs: the service account signs
a JWT, the fake checks its signature and hands out a bearer token, and every Sheets request must
carry it. Each worksheet is a grid of ``CellData`` dicts (``userEnteredValue`` and
``userEnteredFormat``, as the API names them) that the implemented requests read and change:

- ``GET {id}`` (metadata), ``GET {id}/values/{range}`` (``majorDimension``,
  ``valueRenderOption``), ``PUT {id}/values/{range}`` (``valueInputOption`` RAW/USER_ENTERED),
  ``POST {id}/values/{range}:clear``, ``POST {id}/values:batchClear``;
- ``POST {id}:batchUpdate``, applied atomically: addSheet, deleteSheet, insertDimension,
  appendDimension, deleteDimension, updateSheetProperties, repeatCell, updateCells,
  updateDimensionProperties. Anything else raises AssertionError in the test.

Every request is recorded (method, decoded path and range, query, JSON body, status) so tests
assert on what was sent. ``fail_next`` injects HTTP errors (optionally after applying the
request, as when a response is lost) and ``drop_next`` dropped connections. A URL that nothing
here answers raises ``requests.ConnectionError`` from ``responses``: nothing reaches the internet.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import requests
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt

from include.common.http import RetryPolicy

TOKEN_URI = "https://oauth2.fake-google.test/token"
SHEETS_API = "https://sheets.googleapis.com/v4/spreadsheets/"
CLIENT_EMAIL = "report-publisher@fake-project.iam.gserviceaccount.com"
SERIAL_EPOCH = date(1899, 12, 30)
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# google-auth addresses its signed grant to Google's token endpoint whatever the key's token_uri.
JWT_AUDIENCE = "https://oauth2.googleapis.com/token"

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "BAD_GATEWAY",
    503: "UNAVAILABLE",
}


# --- credentials ---------------------------------------------------------------------------------


@functools.cache
def _key_pair() -> tuple[str, str]:
    """A fresh RSA key for the session: (private key PEM, public key PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def service_account_info(client_email: str = CLIENT_EMAIL, token_uri: str = TOKEN_URI) -> dict[str, str]:
    """A service account key file as Google issues it, with a generated key and the fake's token URI."""
    return {
        "type": "service_account",
        "project_id": "fake-project",
        "private_key_id": "0123456789abcdef",
        "private_key": _key_pair()[0],
        "client_email": client_email,
        "client_id": "123456789012345678901",
        "auth_uri": "https://accounts.fake-google.test/o/oauth2/auth",
        "token_uri": token_uri,
    }


def no_wait(attempts: int = 4) -> RetryPolicy:
    """A retry policy that never sleeps, not even for the fake's Retry-After: tests stay fast."""
    return RetryPolicy(attempts=attempts, initial_wait_s=0, max_wait_s=0, max_retry_after_s=0)


# --- what was sent -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """One request to the Sheets API as the fake received it."""

    method: str
    path: str  # decoded, after /v4/spreadsheets/, e.g. "KEY/values/'History'!A1:A"
    range: str | None  # the decoded A1 range of a values request
    params: dict[str, str]
    body: Any  # decoded JSON, None without a body
    status: int

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The requests of a batchUpdate."""
        return list(self.body["requests"]) if self.body else []

    @property
    def kinds(self) -> list[str]:
        """The request kinds of a batchUpdate, in order (``addSheet``, ``repeatCell``...)."""
        return [next(iter(request)) for request in self.requests]


@dataclass
class _Fault:
    status: int | None  # None: drop the connection
    remaining: int
    retry_after: str | None
    method: str | None
    path_contains: str | None
    after_applying: bool
    reason: str | None

    def matches(self, method: str, path: str) -> bool:
        return (
            self.remaining > 0
            and (self.method is None or self.method == method)
            and (self.path_contains is None or self.path_contains in path)
        )


class ApiError(Exception):
    def __init__(self, status: int, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason


# --- the model -----------------------------------------------------------------------------------


@dataclass
class Sheet:
    sheet_id: int
    title: str
    rows: list[dict[int, dict[str, Any]]]  # per row: CellData by column index
    column_count: int
    frozen_rows: int = 0
    frozen_columns: int = 0
    column_pixels: dict[int, int] = field(default_factory=dict)
    row_pixels: dict[int, int] = field(default_factory=dict)

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def snapshot(self) -> Sheet:
        return replace(
            self,
            rows=_copy(self.rows),
            column_pixels=dict(self.column_pixels),
            row_pixels=dict(self.row_pixels),
        )

    def properties(self, index: int) -> dict[str, Any]:
        grid: dict[str, int] = {"rowCount": self.row_count, "columnCount": self.column_count}
        if self.frozen_rows:
            grid["frozenRowCount"] = self.frozen_rows
        if self.frozen_columns:
            grid["frozenColumnCount"] = self.frozen_columns
        return {
            "sheetId": self.sheet_id,
            "title": self.title,
            "index": index,
            "sheetType": "GRID",
            "gridProperties": grid,
        }

    def cell(self, row: int, column: int) -> dict[str, Any]:
        return self.rows[row].get(column, {}) if row < self.row_count else {}

    def value(self, row: int, column: int) -> Any:
        return _raw_value(self.cell(row, column))

    def format(self, row: int, column: int) -> dict[str, Any]:
        return self.cell(row, column).get("userEnteredFormat", {})

    def values(self) -> list[list[Any]]:
        """Stored values, rows and trailing empty cells trimmed as the API trims them."""
        grid = [[self.value(r, c) for c in range(self.column_count)] for r in range(self.row_count)]
        return _trim(grid, empty=None)


@dataclass
class Spreadsheet:
    key: str
    title: str
    sheets: list[Sheet]
    shared_with: set[str] | None  # None: any service account may edit

    def by_title(self, title: str) -> Sheet:
        for sheet in self.sheets:
            if sheet.title == title:
                return sheet
        raise ApiError(400, f"Unable to parse range: {title}")

    def by_id(self, sheet_id: Any) -> Sheet:
        for sheet in self.sheets:
            if sheet.sheet_id == sheet_id:
                return sheet
        raise ApiError(400, f"Invalid requests: No grid with id: {sheet_id}")


# --- the fake ------------------------------------------------------------------------------------


class FakeGoogleSheets:
    """Google's token endpoint and the Sheets v4 API, answering from in-memory spreadsheets."""

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.spreadsheets: dict[str, Spreadsheet] = {}
        self.requests: list[Recorded] = []  # Sheets API requests, failed ones included
        self.token_requests = 0
        self._tokens: dict[str, str] = {}  # access token -> client_email
        self._faults: list[_Fault] = []
        self._sheet_ids = itertools.count(1_000_001, 7_919)
        mock.add_callback(responses.POST, TOKEN_URI, callback=self._token)
        pattern = re.compile(re.escape(SHEETS_API) + r".*")
        for method in (responses.GET, responses.PUT, responses.POST):
            mock.add_callback(method, pattern, callback=self._sheets)

    @classmethod
    @contextmanager
    def running(cls) -> Iterator[FakeGoogleSheets]:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            yield cls(mock)

    # --- arranging -------------------------------------------------------------------------

    def add_spreadsheet(
        self,
        key: str,
        *,
        title: str = "Learning platform",
        worksheets: tuple[str, ...] = ("Sheet1",),
        rows: int = 1000,
        columns: int = 26,
        shared_with: set[str] | None = None,
    ) -> Spreadsheet:
        sheets = [
            Sheet(next(self._sheet_ids), name, [{} for _ in range(rows)], columns) for name in worksheets
        ]
        self.spreadsheets[key] = Spreadsheet(key, title, sheets, shared_with)
        return self.spreadsheets[key]

    def fill(self, key: str, title: str, rows: list[list[Any]], *, at_row: int = 0) -> None:
        """Put values in a worksheet directly (what an older tool or a person left there)."""
        sheet = self.spreadsheets[key].by_title(title)
        for offset, row in enumerate(rows):
            for column, value in enumerate(row):
                cell = sheet.rows[at_row + offset].setdefault(column, {})
                if value is None:
                    cell.pop("userEnteredValue", None)
                else:
                    cell["userEnteredValue"] = _typed(value)

    def fail_next(
        self,
        status: int = 429,
        *,
        times: int = 1,
        retry_after: str | None = None,
        method: str | None = None,
        path_contains: str | None = None,
        after_applying: bool = False,
        reason: str | None = None,
    ) -> None:
        """The next ``times`` matching Sheets requests answer ``status`` (token requests never fail).

        ``after_applying``: the request takes effect and only its answer is an error, as when a
        response is lost on the way back.
        """
        self._faults.append(_Fault(status, times, retry_after, method, path_contains, after_applying, reason))

    def drop_next(
        self, *, times: int = 1, method: str | None = None, path_contains: str | None = None
    ) -> None:
        """The next ``times`` matching Sheets requests fail with a dropped connection."""
        self._faults.append(_Fault(None, times, None, method, path_contains, False, None))

    # --- inspecting ------------------------------------------------------------------------

    def sheet(self, key: str, title: str) -> Sheet:
        return self.spreadsheets[key].by_title(title)

    def values(self, key: str, title: str) -> list[list[Any]]:
        return self.sheet(key, title).values()

    def writes(self) -> list[Recorded]:
        """Successful requests that change something (all but GETs)."""
        return [r for r in self.requests if r.method != "GET" and r.status == 200]

    def batch_updates(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith(":batchUpdate") and r.status == 200]

    # --- the token endpoint ----------------------------------------------------------------

    def _token(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        self.token_requests += 1
        form = {name: values[0] for name, values in parse_qs(_text(request.body)).items()}
        if form.get("grant_type") != JWT_BEARER or "assertion" not in form:
            return _json(400, {"error": "unsupported_grant_type"})
        try:
            claims = jwt.decode(form["assertion"], certs=_key_pair()[1], audience=JWT_AUDIENCE)
        except ValueError as error:  # google-auth's verification errors are ValueErrors
            return _json(400, {"error": "invalid_grant", "error_description": f"Invalid JWT: {error}"})
        token = f"fake-access-token-{self.token_requests}"
        self._tokens[token] = claims["iss"]
        return _json(200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"})

    # --- the Sheets API --------------------------------------------------------------------

    def _sheets(self, request: requests.PreparedRequest) -> Any:
        method = str(request.method)
        parts = urlsplit(str(request.url))
        raw_path = parts.path[len(urlsplit(SHEETS_API).path) :]
        params = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        body = json.loads(_text(request.body)) if request.body else None
        route = _route(method, raw_path)
        range_name = unquote(route["range"]) if route.get("range") else None

        def record(status: int) -> None:
            self.requests.append(Recorded(method, unquote(raw_path), range_name, params, body, status))

        fault = next((f for f in self._faults if f.matches(method, unquote(raw_path))), None)
        if fault is not None:
            fault.remaining -= 1
            if fault.status is None:
                record(0)
                return requests.ConnectionError("the fake dropped the connection")
            if not fault.after_applying:
                record(fault.status)
                return _error(fault.status, "injected failure", fault.reason, fault.retry_after)
        try:
            caller = self._caller(request)
            spreadsheet = self._spreadsheet(route["key"], caller)
            answer = self._apply(route, spreadsheet, params, body, range_name)
        except ApiError as error:
            record(error.status)
            return _error(error.status, error.message, error.reason)
        if fault is not None:  # applied, but the answer is lost
            record(fault.status or 0)
            return _error(
                fault.status or 500, "injected failure after applying", fault.reason, fault.retry_after
            )
        record(200)
        return _json(200, answer)

    def _caller(self, request: requests.PreparedRequest) -> str:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ")
        if not header.startswith("Bearer ") or token not in self._tokens:
            raise ApiError(401, "Request had invalid authentication credentials.")
        return self._tokens[token]

    def _spreadsheet(self, key: str, caller: str) -> Spreadsheet:
        spreadsheet = self.spreadsheets.get(key)
        if spreadsheet is None:
            raise ApiError(404, "Requested entity was not found.")
        if spreadsheet.shared_with is not None and caller not in spreadsheet.shared_with:
            raise ApiError(403, "The caller does not have permission")
        return spreadsheet

    def _apply(
        self,
        route: dict[str, str],
        spreadsheet: Spreadsheet,
        params: dict[str, str],
        body: Any,
        range_name: str | None,
    ) -> dict[str, Any]:
        action = route["action"]
        if action == "metadata":
            return _metadata(spreadsheet)
        if action == "values_get":
            return _values_get(spreadsheet, str(range_name), params)
        if action == "batchUpdate":
            # Google applies all the requests or none of them.
            saved = [sheet.snapshot() for sheet in spreadsheet.sheets]
            try:
                replies = [self._batch_request(spreadsheet, request) for request in body.get("requests", [])]
            except ApiError:
                spreadsheet.sheets = saved
                raise
            return {"spreadsheetId": spreadsheet.key, "replies": replies}
        if action == "values_update":
            return _values_update(spreadsheet, str(range_name), params, body or {})
        if action == "values_clear":
            return _values_clear(spreadsheet, str(range_name))
        if action == "values_batchClear":
            cleared = [_values_clear(spreadsheet, name)["clearedRange"] for name in body.get("ranges", [])]
            return {"spreadsheetId": spreadsheet.key, "clearedRanges": cleared}
        raise AssertionError(f"the fake Sheets API does not implement {action}")

    def _batch_request(self, spreadsheet: Spreadsheet, request: dict[str, Any]) -> dict[str, Any]:
        if len(request) != 1:
            raise ApiError(400, f"Invalid request: exactly one kind per request, got {sorted(request)}")
        kind, payload = next(iter(request.items()))
        handler: Callable[[Spreadsheet, dict[str, Any]], dict[str, Any]] | None = getattr(
            self, f"_do_{kind}", None
        )
        if handler is None:
            raise AssertionError(f"the fake Sheets API does not implement batchUpdate request {kind!r}")
        return handler(spreadsheet, payload)

    # --- batchUpdate requests -------------------------------------------------------------

    def _do_addSheet(self, spreadsheet: Spreadsheet, payload: dict[str, Any]) -> dict[str, Any]:
        properties = payload.get("properties", {})
        title = properties.get("title") or f"Sheet{len(spreadsheet.sheets) + 1}"
        if any(sheet.title == title for sheet in spreadsheet.sheets):
            raise ApiError(
                400, f'Invalid requests[0].addSheet: A sheet with the name "{title}" already exists.'
            )
        grid = properties.get("gridProperties", {})
        sheet = Sheet(
            properties.get("sheetId", next(self._sheet_ids)),
            title,
            [{} for _ in range(grid.get("rowCount", 1000))],
            grid.get("columnCount", 26),
            frozen_rows=grid.get("frozenRowCount", 0),
        )
        index = properties.get("index", len(spreadsheet.sheets))
        spreadsheet.sheets.insert(index, sheet)
        return {"addSheet": {"properties": sheet.properties(spreadsheet.sheets.index(sheet))}}

    def _do_deleteSheet(self, spreadsheet: Spreadsheet, payload: dict[str, Any]) -> dict[str, Any]:
        sheet = spreadsheet.by_id(payload.get("sheetId"))
        if len(spreadsheet.sheets) == 1:
            raise ApiError(400, "You can't remove all the sheets in a document.")
        spreadsheet.sheets.remove(sheet)
        return {}

    def _do_insertDimension(self, spreadsheet: Spreadsheet, payload: dict[str, Any]) -> dict[str, Any]:
        span = payload["range"]
        sheet = spreadsheet.by_id(span.get("sheetId"))
        start, end = span["startIndex"], span["endIndex"]
        before = bool(payload.get("inheritFromBefore", False))
        if before and start == 0:
            raise ApiError(400, "Invalid requests: cannot inherit from before when inserting at index 0")
        if span["dimension"] == "ROWS":
            if not 0 <= start <= sheet.row_count or end <= start:
                raise ApiError(
                    400, f"Invalid requests: insertDimension range {start}:{end} is outside the grid"
                )
            source = start - 1 if before else start
            template = {
                column: {"userEnteredFormat": _copy(cell["userEnteredFormat"])}
                for column, cell in (sheet.rows[source].items() if 0 <= source < sheet.row_count else ())
                if "userEnteredFormat" in cell
            }
            sheet.rows[start:start] = [_copy(template) for _ in range(end - start)]
        else:
            if not 0 <= start <= sheet.column_count or end <= start:
                raise ApiError(
                    400, f"Invalid requests: insertDimension range {start}:{end} is outside the grid"
                )
            width = end - start
            sheet.rows = [
                {(c + width if c >= start else c): cell for c, cell in row.items()} for row in sheet.rows
            ]
            sheet.column_count += width
        return {}

    def _do_appendDimension(self, spreadsheet: Spreadsheet, payload: dict[str, Any]) -> dict[str, Any]:
        sheet = spreadsheet.by_id(payload.get("sheetId"))
        if payload["dimension"] == "ROWS":
            sheet.rows += [{} for _ in range(payload["length"])]
        else:
            sheet.column_count += payload["length"]
        return {}

    def _do_deleteDimension(self, spreadsheet: Spreadsheet, payload: dict[str, Any]) -> dict[str, Any]:
        span = payload["range"]
        sheet = spreadsheet.by_id(span.get("sheetId"))
        start, end = span["startIndex"], span["endIndex"]
        if span["dimension"] == "ROWS":
            if not 0 <= start < end <= sheet.row_count:
                raise ApiError(
                    400, f"Invalid requests: deleteDimension range {start}:{end} is outside the grid"
                )
            if end - start == sheet.row_count:
                raise ApiError(400, "Invalid requests: You can't delete all the rows on the sheet.")
            del sheet.rows[start:end]
        else:
            if not 0 <= start < end <= sheet.column_count:
                raise ApiError(
                    400, f"Invalid requests: deleteDimension range {start}:{end} is outside the grid"
                )
            width = end - start
            sheet.rows = [
                {(c - width if c >= end else c): cell for c, cell in row.items() if not start <= c < end}
                for row in sheet.rows
            ]
            sheet.column_count -= width
        return {}

    def _do_updateSheetProperties(self, spreadsheet: Spreadsheet, payload: dict[str, Any]) -> dict[str, Any]:
        properties = payload.get("properties", {})
        fields = _fields(payload)
        sheet = spreadsheet.by_id(properties.get("sheetId"))
        current = sheet.properties(spreadsheet.sheets.index(sheet))
        updated = _masked(current, properties, fields)
        grid = updated.get("gridProperties", {})
        if updated.get("title") != sheet.title and any(
            s.title == updated.get("title") for s in spreadsheet.sheets
        ):
            raise ApiError(400, f'A sheet with the name "{updated.get("title")}" already exists.')
        rows, columns = grid.get("rowCount", 0), grid.get("columnCount", 0)
        if rows < 1 or columns < 1:
            raise ApiError(400, "Invalid requests: the grid needs at least one row and one column")
        if grid.get("frozenRowCount", 0) >= rows:
            raise ApiError(400, "Invalid requests: You can't freeze all visible rows on the sheet.")
        sheet.title = updated["title"]
        sheet.rows = sheet.rows[:rows] + [{} for _ in range(rows - sheet.row_count)]
        sheet.rows = [{c: cell for c, cell in row.items() if c < columns} for row in sheet.rows]
        sheet.column_count = columns
        sheet.frozen_rows = grid.get("frozenRowCount", 0)
        sheet.frozen_columns = grid.get("frozenColumnCount", 0)
        return {}

    def _do_repeatCell(self, spreadsheet: Spreadsheet, payload: dict[str, Any]) -> dict[str, Any]:
        fields = _fields(payload)
        sheet, rows, columns = _grid_range(spreadsheet, payload.get("range", {}))
        for row in rows:
            for column in columns:
                _set_cell(sheet, row, column, payload.get("cell", {}), fields)
        return {}

    def _do_updateCells(self, spreadsheet: Spreadsheet, payload: dict[str, Any]) -> dict[str, Any]:
        fields = _fields(payload)
        data = [row.get("values", []) for row in payload.get("rows", [])]
        if "start" in payload:
            start = payload["start"]
            sheet = spreadsheet.by_id(start.get("sheetId"))
            first_row, first_column = start.get("rowIndex", 0), start.get("columnIndex", 0)
            width = max((len(cells) for cells in data), default=0)
            if first_row + len(data) > sheet.row_count or first_column + width > sheet.column_count:
                raise ApiError(400, "Invalid requests: updateCells writes outside the grid limits")
            for r, cells in enumerate(data):
                for c, cell in enumerate(cells):
                    _set_cell(sheet, first_row + r, first_column + c, cell, fields)
            return {}
        sheet, rows, columns = _grid_range(spreadsheet, payload["range"])
        for r, row in enumerate(rows):
            for c, column in enumerate(columns):
                given = data[r][c] if r < len(data) and c < len(data[r]) else {}
                _set_cell(sheet, row, column, given, fields)
        return {}

    def _do_updateDimensionProperties(
        self, spreadsheet: Spreadsheet, payload: dict[str, Any]
    ) -> dict[str, Any]:
        fields = _fields(payload)
        span = payload["range"]
        sheet = spreadsheet.by_id(span.get("sheetId"))
        sizes = sheet.column_pixels if span["dimension"] == "COLUMNS" else sheet.row_pixels
        limit = sheet.column_count if span["dimension"] == "COLUMNS" else sheet.row_count
        start, end = span.get("startIndex", 0), span.get("endIndex", limit)
        if not 0 <= start < end <= limit:
            raise ApiError(
                400, f"Invalid requests: updateDimensionProperties range {start}:{end} is outside the grid"
            )
        if "pixelSize" in fields or "*" in fields:
            for index in range(start, end):
                sizes[index] = payload["properties"]["pixelSize"]
        return {}


# --- values requests -----------------------------------------------------------------------------


def _metadata(spreadsheet: Spreadsheet) -> dict[str, Any]:
    return {
        "spreadsheetId": spreadsheet.key,
        "properties": {"title": spreadsheet.title, "locale": "en_US", "timeZone": "Etc/GMT"},
        "sheets": [{"properties": sheet.properties(i)} for i, sheet in enumerate(spreadsheet.sheets)],
        "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{spreadsheet.key}/edit",
    }


def _values_get(spreadsheet: Spreadsheet, range_name: str, params: dict[str, str]) -> dict[str, Any]:
    sheet, (r0, r1, c0, c1) = _a1_range(spreadsheet, range_name)
    r1 = sheet.row_count if r1 is None else min(r1, sheet.row_count)
    c1 = sheet.column_count if c1 is None else min(c1, sheet.column_count)
    render = params.get("valueRenderOption", "FORMATTED_VALUE")
    grid = [[_render(sheet.cell(r, c), render) for c in range(c0, c1)] for r in range(r0, r1)]
    dimension = params.get("majorDimension", "ROWS")
    if dimension == "COLUMNS":
        grid = [list(column) for column in zip(*grid, strict=True)] if grid else []
    answer: dict[str, Any] = {"range": f"{_quoted(sheet.title)}!{_a1(r0, c0)}:{_a1(r1 - 1, c1 - 1)}"}
    answer["majorDimension"] = dimension
    values = _trim(grid, empty="")
    if values:
        answer["values"] = values
    return answer


def _values_update(
    spreadsheet: Spreadsheet, range_name: str, params: dict[str, str], body: dict
) -> dict[str, Any]:
    option = params.get("valueInputOption")
    if option not in ("RAW", "USER_ENTERED"):
        raise ApiError(400, "'valueInputOption' is required but not specified")
    sheet, (r0, r1, c0, c1) = _a1_range(spreadsheet, range_name)
    values = body.get("values") or []
    if (body.get("majorDimension") or "ROWS") == "COLUMNS":
        width = max((len(row) for row in values), default=0)
        values = [[row[i] if i < len(row) else None for row in values] for i in range(width)]
    height, width = len(values), max((len(row) for row in values), default=0)
    if (r1 is not None and r0 + height > r1 and r1 - r0 > 1) or (
        c1 is not None and c0 + width > c1 and c1 - c0 > 1
    ):
        raise ApiError(400, f"Requested writing within range [{range_name}], but tried writing beyond it")
    if r0 + height > sheet.row_count or c0 + width > sheet.column_count:
        raise ApiError(400, f"Range ({range_name}) exceeds grid limits. Max rows: {sheet.row_count}")
    for r, row in enumerate(values):
        for c, value in enumerate(row):
            if value is None:
                continue  # the API leaves a cell given as null unchanged
            cell = sheet.rows[r0 + r].setdefault(c0 + c, {})
            if value == "":
                cell.pop("userEnteredValue", None)
            else:
                cell["userEnteredValue"] = _typed(value, parse=option == "USER_ENTERED")
            if not cell:
                del sheet.rows[r0 + r][c0 + c]
    last_row, last_column = r0 + max(height, 1) - 1, c0 + max(width, 1) - 1
    return {
        "spreadsheetId": spreadsheet.key,
        "updatedRange": f"{_quoted(sheet.title)}!{_a1(r0, c0)}:{_a1(last_row, last_column)}",
        "updatedRows": height,
        "updatedColumns": width,
        "updatedCells": sum(len(row) for row in values),
    }


def _values_clear(spreadsheet: Spreadsheet, range_name: str) -> dict[str, Any]:
    sheet, (r0, r1, c0, c1) = _a1_range(spreadsheet, range_name)
    r1 = sheet.row_count if r1 is None else min(r1, sheet.row_count)
    c1 = sheet.column_count if c1 is None else min(c1, sheet.column_count)
    for r in range(r0, r1):
        for c in range(c0, c1):
            cell = sheet.rows[r].get(c)
            if cell is not None:
                cell.pop("userEnteredValue", None)  # formats stay, as in Google Sheets
                if not cell:
                    del sheet.rows[r][c]
    return {
        "spreadsheetId": spreadsheet.key,
        "clearedRange": f"{_quoted(sheet.title)}!{_a1(r0, c0)}:{_a1(r1 - 1, c1 - 1)}",
    }


# --- helpers -------------------------------------------------------------------------------------

_ROUTES = (
    ("GET", re.compile(r"(?P<key>[^/:]+)"), "metadata"),
    ("POST", re.compile(r"(?P<key>[^/:]+):batchUpdate"), "batchUpdate"),
    ("GET", re.compile(r"(?P<key>[^/:]+)/values/(?P<range>[^/:]+)"), "values_get"),
    ("PUT", re.compile(r"(?P<key>[^/:]+)/values/(?P<range>[^/:]+)"), "values_update"),
    ("POST", re.compile(r"(?P<key>[^/:]+)/values/(?P<range>[^/:]+):clear"), "values_clear"),
    ("POST", re.compile(r"(?P<key>[^/:]+)/values/(?P<range>[^/:]+):append"), "values_append"),
    ("POST", re.compile(r"(?P<key>[^/:]+)/values:batchClear"), "values_batchClear"),
    ("GET", re.compile(r"(?P<key>[^/:]+)/values:batchGet"), "values_batchGet"),
    ("POST", re.compile(r"(?P<key>[^/:]+)/values:batchUpdate"), "values_batchUpdate"),
)


def _route(method: str, raw_path: str) -> dict[str, str]:
    for route_method, pattern, action in _ROUTES:
        match = pattern.fullmatch(raw_path)
        if route_method == method and match:
            return {**match.groupdict(), "action": action}
    raise AssertionError(f"the fake Sheets API has no route for {method} {unquote(raw_path)}")


def _a1_range(spreadsheet: Spreadsheet, text: str) -> tuple[Sheet, tuple[int, int | None, int, int | None]]:
    """(sheet, (first row, end row, first column, end column)); None ends are open."""
    title, a1 = _split_sheet(text)
    if title is None:
        if any(sheet.title == a1 for sheet in spreadsheet.sheets):
            title, a1 = a1, ""
        else:
            title = spreadsheet.sheets[0].title
    sheet = spreadsheet.by_title(title)
    if not a1:
        return sheet, (0, None, 0, None)
    first, _, last = a1.partition(":")
    r0, c0 = _a1_cell(first, text)
    if not last:
        return sheet, (r0 or 0, (r0 or 0) + 1, c0 or 0, (c0 or 0) + 1)
    r1, c1 = _a1_cell(last, text)
    return sheet, (r0 or 0, None if r1 is None else r1 + 1, c0 or 0, None if c1 is None else c1 + 1)


def _split_sheet(text: str) -> tuple[str | None, str]:
    if text.startswith("'"):
        match = re.fullmatch(r"'((?:[^']|'')*)'(?:!(.*))?", text)
        if not match:
            raise ApiError(400, f"Unable to parse range: {text}")
        return match.group(1).replace("''", "'"), match.group(2) or ""
    if "!" in text:
        title, _, a1 = text.partition("!")
        return title, a1
    return None, text


def _a1_cell(text: str, whole: str) -> tuple[int | None, int | None]:
    match = re.fullmatch(r"([A-Za-z]*)(\d*)", text)
    if not match or not (match.group(1) or match.group(2)):
        raise ApiError(400, f"Unable to parse range: {whole}")
    letters, digits = match.groups()
    column = None
    if letters:
        column = 0
        for letter in letters.upper():
            column = column * 26 + ord(letter) - ord("A") + 1
        column -= 1
    return (int(digits) - 1 if digits else None), column


def _a1(row: int, column: int) -> str:
    letters = ""
    column += 1
    while column:
        column, rest = divmod(column - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return f"{letters}{row + 1}"


def _quoted(title: str) -> str:
    return "'" + title.replace("'", "''") + "'"


def _grid_range(spreadsheet: Spreadsheet, span: dict[str, Any]) -> tuple[Sheet, range, range]:
    sheet = spreadsheet.by_id(span.get("sheetId", 0))
    rows = range(span.get("startRowIndex", 0), min(span.get("endRowIndex", sheet.row_count), sheet.row_count))
    columns = range(
        span.get("startColumnIndex", 0),
        min(span.get("endColumnIndex", sheet.column_count), sheet.column_count),
    )
    if span.get("endRowIndex", 0) > sheet.row_count or span.get("endColumnIndex", 0) > sheet.column_count:
        raise ApiError(400, f"Invalid requests: range {span} is outside the grid limits")
    return sheet, rows, columns


def _fields(payload: dict[str, Any]) -> list[str]:
    fields = payload.get("fields")
    if not fields:
        raise ApiError(400, "Invalid requests: At least one field must be updated (fields is empty)")
    return [name.strip() for name in fields.split(",")]


def _set_cell(sheet: Sheet, row: int, column: int, given: dict[str, Any], fields: list[str]) -> None:
    updated = _masked(sheet.rows[row].get(column, {}), given, fields)
    if updated:
        sheet.rows[row][column] = updated
    else:
        sheet.rows[row].pop(column, None)


def _masked(current: dict[str, Any], given: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """``current`` with each field path of the mask taken from ``given`` (removed where absent)."""
    if "*" in fields:
        return _copy(given)
    result = _copy(current)
    for path in fields:
        names = path.split(".")
        source: Any = given
        for name in names:
            source = source.get(name) if isinstance(source, dict) else None
        target = result
        for name in names[:-1]:
            target = target.setdefault(name, {})
        if source is None:
            target.pop(names[-1], None)
        else:
            target[names[-1]] = _copy(source)
    return _pruned(result)


def _pruned(value: dict[str, Any]) -> dict[str, Any]:
    """Without empty objects: a cell whose value and format were removed is no cell at all."""
    out = {}
    for name, item in value.items():
        if isinstance(item, dict):
            item = _pruned(item)
            if not item:
                continue
        out[name] = item
    return out


def _copy(value: Any) -> Any:
    """A deep copy of JSON-like data (``copy.deepcopy`` is several times slower on big grids)."""
    if isinstance(value, dict):
        return {name: _copy(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def _typed(value: Any, *, parse: bool = False) -> dict[str, Any]:
    """A written value as ``userEnteredValue``; USER_ENTERED text is parsed like typing it in."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int | float):
        return {"numberValue": value}
    text = str(value)
    if parse and text.startswith("="):
        return {"formulaValue": text}
    if parse:
        try:
            return {"numberValue": float(text)}
        except ValueError:
            pass
    return {"stringValue": text}


def _raw_value(cell: dict[str, Any]) -> Any:
    entered = cell.get("userEnteredValue", {})
    for name in ("numberValue", "stringValue", "boolValue", "formulaValue"):
        if name in entered:
            value = entered[name]
            if name == "numberValue" and float(value).is_integer():
                return int(value)
            return value
    return None


def _render(cell: dict[str, Any], option: str) -> Any:
    value = _raw_value(cell)
    if value is None:
        return ""
    if option in ("UNFORMATTED_VALUE", "FORMULA") or isinstance(value, str | bool):
        return value
    return _formatted(value, cell.get("userEnteredFormat", {}).get("numberFormat", {}))


def _formatted(number: float, number_format: dict[str, str]) -> str:
    """Enough of Sheets' number formatting to tell a formatted read from an unformatted one."""
    pattern = number_format.get("pattern", "")
    if number_format.get("type") in ("DATE", "DATE_TIME"):
        moment = SERIAL_EPOCH + timedelta(days=number)
        text = moment.isoformat()
        return text if number_format["type"] == "DATE" else f"{text} 00:00"
    if number_format.get("type") == "PERCENT":
        decimals = len(pattern.partition(".")[2].rstrip("%"))
        return f"{number * 100:.{decimals}f}%"
    if pattern == "#,##0":
        return f"{number:,.0f}"
    if pattern.startswith("0."):
        return f"{number:.{len(pattern) - 2}f}"
    return str(number)


def _trim(grid: list[list[Any]], *, empty: Any) -> list[list[Any]]:
    rows = []
    for row in grid:
        row = list(row)
        while row and row[-1] == empty:
            row.pop()
        rows.append(row)
    while rows and not rows[-1]:
        rows.pop()
    return rows


def _text(body: Any) -> str:
    return body.decode() if isinstance(body, bytes) else str(body or "")


def _json(status: int, payload: Any) -> tuple[int, dict[str, str], str]:
    return status, {"Content-Type": "application/json"}, json.dumps(payload)


def _error(
    status: int, message: str, reason: str | None = None, retry_after: str | None = None
) -> tuple[int, dict[str, str], str]:
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": STATUS_NAMES.get(status, "UNKNOWN"),
    }
    if reason:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason}]
    code, headers, body = _json(status, {"error": error})
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return code, headers, body
