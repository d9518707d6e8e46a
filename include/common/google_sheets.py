"""Google Sheets access any pipeline can share: credentials from an Airflow connection, bounded retries.

The key lives in an Airflow connection of the Google Cloud type (extras ``keyfile_dict`` or
``key_path``, as the Google provider names them), read only when a task runs. gspread does not
retry by itself and its ``BackOffHTTPClient`` never gives up, so every call goes through
``call_with_backoff``: 429, 5xx and dropped connections are retried a bounded number of times;
any other refusal fails at once with what to fix. Neither the key nor the access token ever
appears in a message or a log line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import gspread
import requests
from google.auth import exceptions as auth_exceptions
from gspread.exceptions import APIError

from include.common.failures import ConfigurationError, PermanentFailure
from include.common.http import (
    RetryPolicy,
    TransientSourceError,
    describe_transport_error,
    retry_after_seconds,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# Connect, read: a batch update of a few hundred cells answers in well under a second.
DEFAULT_TIMEOUT = (10.0, 60.0)

# The Google provider's names for the key, current first, then the pre-2.0 prefixed ones.
KEYFILE_EXTRAS = ("keyfile_dict", "extra__google_cloud_platform__keyfile_dict")
KEY_PATH_EXTRAS = ("key_path", "extra__google_cloud_platform__key_path")
REQUIRED_KEY_FIELDS = ("client_email", "private_key", "token_uri")

# Google caps its messages at a sentence or two; a cap keeps an odd proxy page out of the log.
MAX_MESSAGE_CHARS = 300


class GoogleSheetsError(PermanentFailure):
    """Google refused a request for a reason retrying cannot fix; the message says what to fix."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def service_account_info(connection: Any) -> dict[str, Any] | None:
    """The service account key held by an Airflow Google Cloud connection, or None if it holds none.

    Raises ConfigurationError (a ValueError) naming the connection and the extra when the key is
    there but unusable; the message never quotes the key.
    """
    conn_id = getattr(connection, "conn_id", None) or "?"
    extras = connection.extra_dejson or {}
    keyfile = _first_set(extras, KEYFILE_EXTRAS)
    key_path = _first_set(extras, KEY_PATH_EXTRAS)
    if keyfile and key_path:
        raise ConfigurationError(
            f"Airflow connection '{conn_id}' sets both extra '{keyfile[0]}' and extra '{key_path[0]}': "
            "keep only one"
        )
    if keyfile:
        name, value = keyfile
        where = f"Airflow connection '{conn_id}': extra '{name}'"
        info = value if isinstance(value, Mapping) else _parse_key_json(value, where)
        return _checked_key(info, conn_id, name)
    if key_path:
        name, path = key_path
        return _checked_key(_read_key_file(path, conn_id, name), conn_id, name)
    return None


def client_from_service_account_info(
    info: Mapping[str, Any], *, source: str = "the service account key"
) -> gspread.Client:
    """A gspread client authenticated as the service account (no request is made yet)."""
    try:
        client = gspread.service_account_from_dict(info)
    except (ValueError, TypeError, KeyError) as error:
        # google-auth's messages name fields, never values; still, keep only the exception type.
        raise ConfigurationError(
            f"{source} cannot be used as a service account key ({type(error).__name__}): "
            "check that it is a complete key file downloaded from Google Cloud"
        ) from None
    client.set_timeout(DEFAULT_TIMEOUT)
    return client


def sheets_client(conn_id: str) -> gspread.Client | None:
    """A client for the service account of Airflow connection ``conn_id``; None when there is none.

    None means "no Google credentials configured" (the connection is not defined, or holds no
    key), so the caller can fall back to another destination. Read at run time only.
    """
    from airflow.sdk import Connection  # deferred: parsing a DAG must not look connections up
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        connection = Connection.get(conn_id)
    except AirflowNotFoundException:
        return None
    info = service_account_info(connection)
    if info is None:
        log.warning(
            "Airflow connection '%s' holds no service account key (extra keyfile_dict or key_path)",
            conn_id,
        )
        return None
    return client_from_service_account_info(info, source=f"the key in Airflow connection '{conn_id}'")


def service_account_email(client: gspread.Client) -> str | None:
    """The service account a client acts as (the address a spreadsheet must be shared with)."""
    credentials = getattr(client.http_client, "auth", None)
    return getattr(credentials, "service_account_email", None)


def call_with_backoff(
    operation: Callable[[], T], *, what: str, policy: RetryPolicy, account: str | None = None
) -> T:
    """Run ``operation`` (some gspread calls), retrying what may succeed on a later attempt.

    ``what`` names the step in messages; ``account`` is the service account's email, named in
    the hint when Google refuses access. An operation that is not idempotent must re-read what
    it depends on at each attempt: a failure may come after Google applied the request.
    """

    def attempt() -> T:
        try:
            return operation()
        except (requests.ConnectionError, requests.Timeout) as error:
            raise TransientSourceError(f"{what}: {describe_transport_error(error)}") from None
        except auth_exceptions.TransportError:
            raise TransientSourceError(f"{what}: the token endpoint could not be reached") from None
        except auth_exceptions.RefreshError as error:
            raise _refresh_failure(error, what) from None
        except (APIError, gspread.exceptions.SpreadsheetNotFound, PermissionError) as error:
            api_error = _api_error(error)
            if api_error is None:
                raise
            # ``from None``: an APIError holds the response, and its request the bearer token.
            raise _translate(api_error, what=what, account=account) from None

    try:
        return policy.call(attempt, what=what)
    except TransientSourceError as error:
        raise TransientSourceError(
            f"{what}: gave up after {policy.limits}; last failure: {error}",
            retry_after=error.retry_after,
        ) from None


# --- credentials ---------------------------------------------------------------------------------


def _first_set(extras: Mapping[str, Any], names: tuple[str, ...]) -> tuple[str, Any] | None:
    for name in names:
        value = extras.get(name)
        if value not in (None, "", {}):
            return name, value
    return None


def _parse_key_json(text: Any, where: str) -> Any:
    if not isinstance(text, str):
        raise ConfigurationError(f"{where} must be the key file's JSON text or object")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        # Position only: the decoder's ``doc`` attribute is the key itself.
        raise ConfigurationError(
            f"{where} is not valid JSON (line {error.lineno}, column {error.colno})"
        ) from None


def _read_key_file(path: Any, conn_id: str, extra: str) -> Any:
    where = f"Airflow connection '{conn_id}': the file {str(path)!r} named by extra '{extra}'"
    try:
        text = Path(str(path)).expanduser().read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigurationError(f"{where} cannot be read on this worker ({type(error).__name__})") from None
    return _parse_key_json(text, where)


def _checked_key(info: Any, conn_id: str, extra: str) -> dict[str, Any]:
    if not isinstance(info, Mapping):
        raise ConfigurationError(f"Airflow connection '{conn_id}': extra '{extra}' is not a JSON object")
    if info.get("type", "service_account") != "service_account":
        raise ConfigurationError(
            f"Airflow connection '{conn_id}': extra '{extra}' holds a key of type {info.get('type')!r}; "
            "a service account key is needed"
        )
    missing = [
        field for field in REQUIRED_KEY_FIELDS if not (isinstance(info.get(field), str) and info[field])
    ]
    if missing:
        raise ConfigurationError(
            f"Airflow connection '{conn_id}': extra '{extra}' is not a complete service account key "
            f"(missing {', '.join(missing)})"
        )
    if "PRIVATE KEY-----" not in info["private_key"]:
        raise ConfigurationError(
            f"Airflow connection '{conn_id}': extra '{extra}': private_key is not a PEM private key"
        )
    return dict(info)


# --- errors --------------------------------------------------------------------------------------


def _api_error(error: Exception) -> APIError | None:
    """The API error behind ``error``: gspread's ``open_by_key`` re-raises 403/404 as other types."""
    if isinstance(error, APIError):
        return error
    cause = error.__cause__
    return cause if isinstance(cause, APIError) else None


def _translate(error: APIError, *, what: str, account: str | None) -> Exception:
    status = error.response.status_code
    details = error.error if isinstance(error.error, Mapping) else {}
    message = str(details.get("message", ""))[:MAX_MESSAGE_CHARS]
    said = f"Google Sheets answered {status} {details.get('status', '')}".rstrip() + f": {message}"
    if status == 429 or status >= 500 or _is_rate_limit(details):
        return TransientSourceError(f"{what}: {said}", retry_after=retry_after_seconds(error.response))
    return GoogleSheetsError(f"{what}: {said}. {_what_to_fix(status, details, account)}", status=status)


def _what_to_fix(status: int, details: Mapping[str, Any], account: str | None) -> str:
    if status == 403 and "SERVICE_DISABLED" in _reasons(details):
        return "Enable the Google Sheets API in the service account's Google Cloud project"
    if status == 403:
        who = account or "the service account's client_email"
        return f"Share the spreadsheet with {who} as an Editor"
    if status == 404:
        return "The spreadsheet id is wrong or the spreadsheet was deleted: check the configured key or URL"
    if status == 401:
        return "Google rejected the credentials: replace the service account key in the connection"
    return "The request was refused as invalid: this needs a code or configuration fix, not a retry"


def _is_rate_limit(details: Mapping[str, Any]) -> bool:
    # Some Google front ends still answer 403 for per-user rate limits.
    return bool({"rateLimitExceeded", "userRateLimitExceeded", "RATE_LIMIT_EXCEEDED"} & _reasons(details))


def _reasons(details: Mapping[str, Any]) -> set[str]:
    found = set()
    for entry in details.get("details", ()) or ():
        if isinstance(entry, Mapping) and entry.get("reason"):
            found.add(str(entry["reason"]))
    for entry in details.get("errors", ()) or ():
        if isinstance(entry, Mapping) and entry.get("reason"):
            found.add(str(entry["reason"]))
    return found


def _refresh_failure(error: auth_exceptions.RefreshError, what: str) -> Exception:
    # google-auth retries its own token request; what is left is either an outage or a bad key.
    if getattr(error, "retryable", False):
        return TransientSourceError(f"{what}: the access token could not be obtained")
    reason = str(error.args[0])[:MAX_MESSAGE_CHARS] if error.args else type(error).__name__
    return GoogleSheetsError(
        f"{what}: Google refused the service account's key when asked for an access token ({reason}): "
        "the key may be deleted or disabled, or token_uri wrong; replace the key in the connection"
    )
