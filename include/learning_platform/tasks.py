"""The bodies of the ``learning_platform_etl`` tasks: Airflow context in, plain calls out.

Each function reads what it needs from the task context (the run's interval, its params, its
connections), calls the stage module that does the work, and returns a few counts for XCom.
No records ever pass through XCom: stages hand over through the warehouse.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import psycopg

from include.common.intervals import Interval, resolve_interval
from include.common.postgres import connect, conninfo_from_airflow
from include.learning_platform.api import LearningPlatformAuthError, LearningPlatformClient
from include.learning_platform.extract import extract_interval
from include.learning_platform.load import load_interval
from include.learning_platform.validate import validate_interval
from include.learning_platform.warehouse import DB_CONN_ID, migrate_schema


def run_interval(context: dict[str, Any]) -> Interval:
    """The interval this run owns: the chosen date if any, else the data interval."""
    params = context["params"]
    return resolve_interval(
        chosen_date=params.get("date"),
        data_interval_start=context.get("data_interval_start"),
        data_interval_end=context.get("data_interval_end"),
        test_mode=bool(params.get("test_mode")),
    )


@contextmanager
def warehouse(context: dict[str, Any]) -> Iterator[psycopg.Connection]:
    ti = context["ti"]
    conn = connect(
        conninfo_from_airflow(DB_CONN_ID),
        conn_id=DB_CONN_ID,
        application_name=f"{ti.dag_id}.{ti.task_id}",
    )
    with conn:
        yield conn


def migrate(context: dict[str, Any]) -> dict[str, Any]:
    with warehouse(context) as conn:
        return {"applied": migrate_schema(conn)}


def extract(context: dict[str, Any]) -> dict[str, Any]:
    from airflow.sdk.exceptions import AirflowFailException

    interval = run_interval(context)
    window = timedelta(minutes=int(context["params"]["window_minutes"]))
    try:
        with warehouse(context) as conn, LearningPlatformClient.from_connection() as client:
            result = extract_interval(conn, client, interval, window=window, dag_run_id=context["run_id"])
    except LearningPlatformAuthError as error:
        # Retrying cannot fix credentials: fail the task for good instead of retrying for minutes.
        raise AirflowFailException(str(error)) from None
    return {"interval": str(interval), "windows": result.windows, "fetched": result.fetched}


def validate(context: dict[str, Any]) -> dict[str, Any]:
    interval = run_interval(context)
    with warehouse(context) as conn:
        result = validate_interval(conn, interval)
    return {"interval": str(interval), **result.as_dict()}


def load(context: dict[str, Any]) -> dict[str, Any]:
    interval = run_interval(context)
    with warehouse(context) as conn:
        result = load_interval(conn, interval, dag_run_id=context["run_id"])
    return {"interval": str(interval), **result.as_dict()}
