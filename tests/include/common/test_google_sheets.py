"""Google Sheets credentials come from an Airflow connection; failures are retried only when that can help.

The retry tests drive real gspread calls against the fake Sheets API (``tests/fakes``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gspread
import pytest
import requests

from include.common.google_sheets import (
    GoogleSheetsError,
    call_with_backoff,
    client_from_service_account_info,
    service_account_email,
    service_account_info,
    sheets_client,
)
from include.common.http import RetryPolicy, TransientSourceError
from tests.fakes.google_sheets import CLIENT_EMAIL, FakeGoogleSheets, no_wait
from tests.fakes.google_sheets import service_account_info as fake_key

KEY = "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdEFG"
NO_WAIT = no_wait()
SECRET = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC-SECRET-MATERIAL"


def connection(extras: dict[str, Any], conn_id: str = "sheets") -> SimpleNamespace:
    """What ``Connection.get`` returns, as far as reading the key goes."""
    return SimpleNamespace(conn_id=conn_id, extra_dejson=extras)


@pytest.fixture
def client(gspread_client: gspread.Client) -> gspread.Client:
    return gspread_client


# --- the key in the connection -------------------------------------------------------------------


def test_the_key_is_read_from_keyfile_dict_as_json_text() -> None:
    key = fake_key()

    assert service_account_info(connection({"keyfile_dict": json.dumps(key)})) == key


def test_the_key_is_read_from_keyfile_dict_as_an_object() -> None:
    key = fake_key()

    assert service_account_info(connection({"keyfile_dict": key, "project": "p"})) == key


def test_the_key_is_read_from_the_file_named_by_key_path(tmp_path: Path) -> None:
    key = fake_key()
    path = tmp_path / "key.json"
    path.write_text(json.dumps(key), encoding="utf-8")

    assert service_account_info(connection({"key_path": str(path)})) == key


@pytest.mark.parametrize(
    "name", ["extra__google_cloud_platform__keyfile_dict", "extra__google_cloud_platform__key_path"]
)
def test_the_legacy_prefixed_extras_are_understood(name: str, tmp_path: Path) -> None:
    key = fake_key()
    path = tmp_path / "key.json"
    path.write_text(json.dumps(key), encoding="utf-8")
    value = str(path) if name.endswith("key_path") else json.dumps(key)

    assert service_account_info(connection({name: value})) == key


@pytest.mark.parametrize(
    "extras",
    [{}, {"project": "p", "scope": "x"}, {"keyfile_dict": ""}, {"key_path": ""}, {"keyfile_dict": None}],
)
def test_a_connection_without_a_key_gives_none(extras: dict[str, Any]) -> None:
    assert service_account_info(connection(extras)) is None


@pytest.mark.parametrize(
    ("extras", "message"),
    [
        ({"keyfile_dict": '{"private_key": "' + SECRET + '", '}, "extra 'keyfile_dict' is not valid JSON"),
        ({"keyfile_dict": json.dumps({"private_key": SECRET})}, "missing client_email, token_uri"),
        ({"keyfile_dict": json.dumps([SECRET])}, "extra 'keyfile_dict' is not a JSON object"),
        ({"keyfile_dict": 42}, "must be the key file's JSON text"),
        (
            {"extra__google_cloud_platform__keyfile_dict": json.dumps({**fake_key(), "private_key": SECRET})},
            "private_key is not a PEM private key",
        ),
        (
            {"keyfile_dict": json.dumps({"type": "authorized_user", "refresh_token": SECRET})},
            "a service account key is needed",
        ),
        ({"keyfile_dict": json.dumps(fake_key()), "key_path": "/k.json"}, "keep only one"),
    ],
)
def test_a_malformed_key_names_the_connection_and_extra_but_never_the_key(
    extras: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        service_account_info(connection(extras, conn_id="learning_platform_sheets"))

    assert "'learning_platform_sheets'" in str(raised.value)
    assert SECRET not in str(raised.value)
    assert "BEGIN PRIVATE KEY" not in str(raised.value)


def test_a_key_path_that_cannot_be_read_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"

    with pytest.raises(ValueError, match=r"'sheets'.*nowhere\.json.*key_path.*cannot be read"):
        service_account_info(connection({"key_path": str(missing)}))


def test_a_key_file_that_is_not_json_is_refused_without_quoting_it(tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    path.write_text(f"private_key={SECRET}", encoding="utf-8")

    with pytest.raises(ValueError, match="not valid JSON") as raised:
        service_account_info(connection({"key_path": str(path)}))

    assert SECRET not in str(raised.value)


def test_a_key_google_auth_cannot_load_is_refused_without_quoting_it() -> None:
    key = {**fake_key(), "private_key": f"-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----\n"}

    with pytest.raises(ValueError, match="the key in connection 'x' cannot be used") as raised:
        client_from_service_account_info(key, source="the key in connection 'x'")

    assert SECRET not in str(raised.value)
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__


# --- the client from an Airflow connection -------------------------------------------------------


def test_sheets_client_builds_a_client_of_the_connections_service_account(
    airflow_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = {"keyfile_dict": json.dumps(fake_key())}
    monkeypatch.setenv(
        "AIRFLOW_CONN_SHEETS_TEST", json.dumps({"conn_type": "google_cloud_platform", "extra": extra})
    )

    client = sheets_client("sheets_test")

    assert isinstance(client, gspread.Client)
    assert service_account_email(client) == CLIENT_EMAIL


def test_sheets_client_is_none_when_the_connection_is_not_defined(airflow_home: Path) -> None:
    assert sheets_client("no_such_connection_anywhere") is None


def test_sheets_client_is_none_and_says_so_when_the_connection_holds_no_key(
    airflow_home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SHEETS_TEST", json.dumps({"conn_type": "google_cloud_platform"}))

    with caplog.at_level(logging.WARNING, logger="include.common.google_sheets"):
        assert sheets_client("sheets_test") is None

    assert "'sheets_test' holds no service account key" in caplog.text


# --- retrying ------------------------------------------------------------------------------------


def open_spreadsheet(client: gspread.Client, policy: RetryPolicy = NO_WAIT) -> gspread.Spreadsheet:
    return call_with_backoff(
        lambda: client.open_by_key(KEY), what="open the report", policy=policy, account=CLIENT_EMAIL
    )


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_rate_limits_and_server_errors_are_retried(
    status: int, google: FakeGoogleSheets, client: gspread.Client
) -> None:
    google.add_spreadsheet(KEY)
    google.fail_next(status, times=2, retry_after="0")

    assert open_spreadsheet(client).id == KEY

    assert [r.status for r in google.requests] == [status, status, 200]


def test_a_dropped_connection_is_retried(google: FakeGoogleSheets, client: gspread.Client) -> None:
    google.add_spreadsheet(KEY)
    google.drop_next()

    assert open_spreadsheet(client).id == KEY

    assert [r.status for r in google.requests] == [0, 200]


def test_a_403_for_a_per_user_rate_limit_is_retried(google: FakeGoogleSheets, client: gspread.Client) -> None:
    google.add_spreadsheet(KEY)
    google.fail_next(403, reason="userRateLimitExceeded")

    assert open_spreadsheet(client).id == KEY

    assert len(google.requests) == 2


def test_persistent_rate_limiting_gives_up_after_the_policys_attempts_keeping_the_servers_hint(
    google: FakeGoogleSheets, client: gspread.Client
) -> None:
    google.add_spreadsheet(KEY)
    google.fail_next(429, times=100, retry_after="7")
    policy = no_wait(5)

    with pytest.raises(
        TransientSourceError, match=r"open the report: gave up after 5 attempts.*429"
    ) as raised:
        open_spreadsheet(client, policy)

    assert raised.value.retry_after == 7.0  # honoured, here capped to no wait at all
    assert len(google.requests) == 5


def test_an_unshared_spreadsheet_fails_at_once_naming_the_account_to_share_it_with(
    google: FakeGoogleSheets, client: gspread.Client
) -> None:
    google.add_spreadsheet(KEY, shared_with={"someone-else@example.org"})

    with pytest.raises(GoogleSheetsError) as raised:
        open_spreadsheet(client)

    assert f"Share the spreadsheet with {CLIENT_EMAIL} as an Editor" in str(raised.value)
    assert raised.value.status == 403
    assert len(google.requests) == 1


def test_without_the_account_the_hint_names_the_client_email_field(
    google: FakeGoogleSheets, client: gspread.Client
) -> None:
    google.add_spreadsheet(KEY, shared_with=set())

    with pytest.raises(
        GoogleSheetsError, match="Share the spreadsheet with the service account's client_email"
    ):
        call_with_backoff(lambda: client.open_by_key(KEY), what="open", policy=NO_WAIT)


def test_a_disabled_sheets_api_says_to_enable_it(google: FakeGoogleSheets, client: gspread.Client) -> None:
    google.add_spreadsheet(KEY)
    google.fail_next(403, reason="SERVICE_DISABLED")

    with pytest.raises(GoogleSheetsError, match="Enable the Google Sheets API"):
        open_spreadsheet(client)


def test_an_unknown_spreadsheet_fails_at_once_saying_the_id_is_wrong(
    google: FakeGoogleSheets, client: gspread.Client
) -> None:
    with pytest.raises(GoogleSheetsError, match="spreadsheet id is wrong") as raised:
        open_spreadsheet(client)

    assert raised.value.status == 404
    assert len(google.requests) == 1


def test_an_invalid_request_fails_at_once(google: FakeGoogleSheets, client: gspread.Client) -> None:
    google.add_spreadsheet(KEY)
    spreadsheet = open_spreadsheet(client)
    bad = {"requests": [{"repeatCell": {"range": {"sheetId": 1}, "cell": {}, "fields": "*"}}]}

    with pytest.raises(
        GoogleSheetsError, match=r"answered 400 INVALID_ARGUMENT.*No grid with id: 1.*not a retry"
    ):
        call_with_backoff(lambda: spreadsheet.batch_update(bad), what="format", policy=NO_WAIT)

    assert len(google.requests) == 2


def test_neither_the_key_nor_the_token_appears_in_errors_or_logs(
    google: FakeGoogleSheets, client: gspread.Client, caplog: pytest.LogCaptureFixture
) -> None:
    google.add_spreadsheet(KEY)
    google.fail_next(503, times=10)
    policy = no_wait(2)

    with caplog.at_level(logging.DEBUG), pytest.raises(TransientSourceError) as raised:
        open_spreadsheet(client, policy)

    private_key_body = fake_key()["private_key"].splitlines()[1]
    for text in (str(raised.value), caplog.text):
        assert "fake-access-token" not in text
        assert private_key_body not in text
    assert raised.value.__cause__ is None  # the APIError, holding the request's headers, is dropped
    assert "retrying" in caplog.text


def test_nothing_reaches_the_internet(google: FakeGoogleSheets, client: gspread.Client) -> None:
    # Opening by title goes to the Drive API, which the fake does not answer: the call fails here.
    with pytest.raises(requests.ConnectionError, match="Connection refused by Responses"):
        client.open("Learning platform")
