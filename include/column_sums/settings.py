"""What one ``csv_column_sums`` request reads and where its result goes.

A request names only its file (the run's ``location`` param, from the REST API's POST body or
Airflow's trigger form). Where files may come from and where results are kept is the
deployment's, said once in the JSON Variable ``csv_column_sums``:

``local_root``
    Absolute path of the folder on the workers that local locations are relative to. Unset:
    local files are refused with ``storage_not_configured``.
``aws_conn_id``
    The Amazon provider's connection for ``s3://`` locations (default ``aws_default``; an empty
    string refuses S3).
``connection``
    The Postgres connection of the results table (default ``warehouse_db``), read by the task
    and by the REST API.
``processes``
    Processes that sum one file's blocks (default 1): more make one big file faster and leave
    fewer cores for the other requests a worker runs at the same time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from include.common.failures import ConfigurationError, no_retry_on_permanent_failure
from include.common.settings import params_with_settings, parse_settings

DAG_ID = "csv_column_sums"
SETTINGS_VARIABLE = "csv_column_sums"
DEFAULT_CONN_ID = "warehouse_db"
DEFAULT_AWS_CONN_ID = "aws_default"
MAX_PROCESSES = 16


@dataclass(frozen=True, slots=True)
class SumsSpec:
    """One request: the file, the deployment's storage, and the results row it writes."""

    location: str
    local_root: Path | None
    aws_conn_id: str | None
    conn_id: str
    processes: int
    task_id: str  # the DAG run's id: the REST API's task id and the results row's key
    try_number: int = 1

    @classmethod
    @no_retry_on_permanent_failure
    def from_airflow(cls, params: Mapping[str, Any], *, run_id: str, try_number: int) -> SumsSpec:
        """The spec of the running task: its ``location`` param and the settings Variable.

        Fails its task at once (no retries) when the deployment's settings are invalid.
        """
        return cls.from_params(
            params_with_settings(params, SETTINGS_VARIABLE), task_id=run_id, try_number=try_number
        )

    @classmethod
    def from_params(cls, params: Mapping[str, Any], *, task_id: str, try_number: int = 1) -> SumsSpec:
        """Validate the merged params and settings; every error names what to set."""
        location = params.get("location")
        if not isinstance(location, str):
            raise ConfigurationError("no location given: trigger the run with the param 'location'")
        root = params.get("local_root") or None
        if root is not None and not Path(root).is_absolute():
            raise ConfigurationError(
                f"local_root {root!r} in the Airflow Variable '{SETTINGS_VARIABLE}' must be an absolute path"
            )
        processes = params.get("processes", 1)
        if (
            not isinstance(processes, int)
            or isinstance(processes, bool)
            or not 1 <= processes <= MAX_PROCESSES
        ):
            raise ConfigurationError(
                f"processes {processes!r} in the Airflow Variable '{SETTINGS_VARIABLE}' must be an "
                f"integer from 1 to {MAX_PROCESSES}"
            )
        return cls(
            location=location,
            local_root=Path(root) if root else None,
            aws_conn_id=params.get("aws_conn_id", DEFAULT_AWS_CONN_ID) or None,
            conn_id=results_conn_id(params),
            processes=processes,
            task_id=task_id,
            try_number=try_number,
        )


def results_conn_id(settings: Mapping[str, Any]) -> str:
    """The Postgres connection of the results table, from the settings (or the default)."""
    conn_id = settings.get("connection") or DEFAULT_CONN_ID
    if not isinstance(conn_id, str):
        raise ConfigurationError(
            f"connection {conn_id!r} in the Airflow Variable '{SETTINGS_VARIABLE}' must be a connection id"
        )
    return conn_id


def configured_results_conn_id(variable_value: str | None) -> str:
    """:func:`results_conn_id` from the Variable's raw value, for readers outside a task (the API)."""
    return results_conn_id(parse_settings(SETTINGS_VARIABLE, variable_value))
