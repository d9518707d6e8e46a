"""What one run of ``csv_folder_import`` is asked to import: where from, into which table, how.

The trigger form's params say it for a manual run. A scheduled run (quarterly) has the form's
defaults, which leave the place of the drop to the operator: the Variable ``csv_folder_import``
(JSON with the same keys as the params) fills in every param the run left empty, so that where
the quarterly drop lives is configured once per deployment, not in the DAG file.

:meth:`ImportSpec.from_airflow` reads both once per task into a plain, validated value; the task
bodies in ``include.csv_import.tasks`` take it as an argument, so tests build one directly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from include.common.failures import ConfigurationError, no_retry_on_permanent_failure
from include.common.settings import params_with_settings, relative_pattern, required_param
from include.csv_import.dialect import DialectOverrides
from include.csv_import.ledger import Mode
from include.csv_import.model import ColumnType
from include.csv_import.table import TableName, parse_table_name
from include.csv_import.types import column_type_named

if TYPE_CHECKING:
    from airflow.sdk.types import DagRunProtocol

SETTINGS_VARIABLE = "csv_folder_import"
DEFAULT_DB_CONN_ID = "warehouse_db"
DEFAULT_PATTERN = "**/*.csv"
DEFAULT_MAX_REJECTED_SHARE = 0.01
DEFAULT_CHUNK_MB = 256

_SINGLE_CHARACTER = re.compile(r"^.$|^\\t$")


@dataclass(frozen=True, slots=True)
class ImportSpec:
    """One run's import: the drop, the destination, and how to read and judge the files."""

    # Where the drop is, as an object-storage URL: file:///abs/folder or s3://bucket/prefix.
    source: str
    pattern: str
    table: TableName
    # The Postgres connection of the destination database (the pipeline's ledger lives there too).
    conn_id: str
    # The connection object storage reads the source with (S3: an AWS connection); None: the
    # storage's default (local folders need none).
    storage_conn_id: str | None
    mode: Mode
    dialect: DialectOverrides
    column_types: Mapping[str, ColumnType]
    max_rejected_share: float
    chunk_bytes: int
    run_id: str
    # The database sessions' application_name, so pg_stat_activity shows which task holds a lock.
    session_name: str = "csv_folder_import"

    @classmethod
    @no_retry_on_permanent_failure
    def from_airflow(cls, params: Mapping[str, Any], dag_run: DagRunProtocol, *, task_id: str) -> ImportSpec:
        """The spec of a task of ``dag_run``: its params, gaps filled from the settings Variable.

        Fails its task at once (no retries) when the run cannot be imported as triggered.
        """
        return cls.from_params(
            params_with_settings(params, SETTINGS_VARIABLE),
            run_id=dag_run.run_id,
            session_name=f"{dag_run.dag_id}.{task_id}",
        )

    @classmethod
    def from_params(cls, params: Mapping[str, Any], *, run_id: str, session_name: str = "") -> ImportSpec:
        """Validate ``params`` (the form's keys) into a spec; every error names the param to fix."""
        share = float(params.get("max_rejected_share", DEFAULT_MAX_REJECTED_SHARE))
        if not 0 <= share <= 1:
            raise ConfigurationError(f"max_rejected_share must be between 0 and 1, not {share}")
        chunk_mb = int(params.get("chunk_mb", DEFAULT_CHUNK_MB))
        if chunk_mb < 1:
            raise ConfigurationError(f"chunk_mb must be at least 1, not {chunk_mb}")
        return cls(
            source=source_url(required_param(params, "source", SETTINGS_VARIABLE)),
            pattern=relative_pattern(params.get("pattern") or DEFAULT_PATTERN, base="source"),
            table=parse_table_name(required_param(params, "table", SETTINGS_VARIABLE)),
            conn_id=params.get("connection") or DEFAULT_DB_CONN_ID,
            storage_conn_id=params.get("storage_connection") or None,
            mode=_mode(params.get("mode") or Mode.APPEND),
            dialect=DialectOverrides(
                delimiter=_single_character(params, "delimiter"),
                quotechar=_single_character(params, "quotechar"),
                escapechar=_single_character(params, "escapechar"),
                encoding=_encoding(params.get("encoding")),
                header=params.get("header"),
            ),
            column_types=_column_types(params.get("column_types") or {}),
            max_rejected_share=share,
            chunk_bytes=chunk_mb * 1024 * 1024,
            run_id=run_id,
            session_name=session_name or "csv_folder_import",
        )


def source_url(source: str) -> str:
    """``source`` as an object-storage URL; a bare absolute path is a local folder."""
    source = source.strip()
    if "://" in source:
        return source.rstrip("/")
    if not source.startswith("/"):
        raise ConfigurationError(
            f"source {source!r} is neither a URL (s3://bucket/prefix, file:///folder) nor an "
            "absolute path: a relative path would depend on the worker's working directory"
        )
    return f"file://{source.rstrip('/') or '/'}"


def _mode(value: str) -> Mode:
    try:
        return Mode(value)
    except ValueError:
        raise ConfigurationError(f"mode must be 'append' or 'replace', not {value!r}") from None


def _single_character(params: Mapping[str, Any], key: str) -> str | None:
    value = params.get(key)
    if value in (None, ""):
        return None
    if not (isinstance(value, str) and _SINGLE_CHARACTER.match(value)):
        raise ConfigurationError(f"{key} must be one character (or \\t for a tab), not {value!r}")
    return "\t" if value == "\\t" else value


def _encoding(value: str | None) -> str | None:
    if not value:
        return None
    import codecs

    try:
        return codecs.lookup(value).name
    except LookupError:
        raise ConfigurationError(
            f"encoding {value!r} is not an encoding Python knows (e.g. utf-8, cp1252)"
        ) from None


def _column_types(value: Mapping[str, Any] | str) -> dict[str, ColumnType]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise ConfigurationError(f"column_types is not a JSON object: {error}") from None
    if not isinstance(value, Mapping):
        raise ConfigurationError('column_types must be an object, e.g. {"postcode": "text"}')
    types = {}
    for column, type_name in value.items():
        try:
            types[str(column)] = column_type_named(type_name)
        except ValueError as error:
            raise ConfigurationError(f"column_types[{column!r}]: {error}") from None
    return types
