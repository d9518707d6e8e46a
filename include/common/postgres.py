"""PostgreSQL access shared by the pipelines: connecting, SQL files and interval locks.

Pipelines talk to their warehouse with psycopg 3 directly (COPY, server-side cursors); an
Airflow connection only supplies the address and credentials. Functions that do the work take
an open ``psycopg.Connection`` so that tests hand them a real local server.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from include.common.failures import ConfigurationError
from include.common.intervals import Interval

DEFAULT_CONNECT_TIMEOUT_S = 15

# Connection extras passed through to libpq; anything else in extras is ignored.
_LIBPQ_EXTRAS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "options")


class WarehouseUnavailable(RuntimeError):
    """The warehouse cannot be reached with the configured connection."""


def conninfo_from_airflow(conn_id: str) -> str:
    """A libpq connection string for the Airflow connection ``conn_id`` (read at run time)."""
    from airflow.sdk import Connection  # deferred: keeps this module importable without Airflow

    return conninfo_from_connection(Connection.get(conn_id))


def conninfo_from_connection(connection: Any) -> str:
    """A libpq connection string from an Airflow ``Connection`` (schema = database name)."""
    extras = {"connect_timeout": DEFAULT_CONNECT_TIMEOUT_S, **connection.extra_dejson}
    return make_conninfo(
        host=connection.host or None,
        port=connection.port or None,
        dbname=connection.schema or None,
        user=connection.login or None,
        password=connection.password or None,
        **{key: str(extras[key]) for key in _LIBPQ_EXTRAS if key in extras},
    )


def connect(conninfo: str, *, conn_id: str, application_name: str) -> psycopg.Connection:
    """Open a connection, turning a failure into one message that names what to fix."""
    try:
        return psycopg.connect(conninfo, application_name=application_name)
    except psycopg.OperationalError as error:
        # libpq's message says what failed (host, auth, database) and never holds the password.
        reason = " ".join(str(error).split()) or type(error).__name__
        raise WarehouseUnavailable(
            f"cannot connect to the warehouse of Airflow connection '{conn_id}': {reason}. "
            "Check the connection's host, port, schema (database), login and password."
        ) from None


@contextmanager
def airflow_postgres(
    conn_id: str, *, application_name: str, param: str = "connection"
) -> Iterator[psycopg.Connection]:
    """An open connection to the database of the Airflow connection ``conn_id``.

    ``param`` names the DAG param that chose ``conn_id``, so that the error for an undefined
    connection says where to name another.
    """
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conninfo = conninfo_from_airflow(conn_id)
    except AirflowNotFoundException:
        raise ConfigurationError(
            f"the Airflow connection '{conn_id}' is not defined: define it (type Postgres, schema = "
            f"the database), or name another with the param '{param}'"
        ) from None
    with connect(conninfo, conn_id=conn_id, application_name=application_name) as conn:
        yield conn


@cache
def read_sql(directory: Path, name: str) -> str:
    """The text of ``<directory>/<name>.sql``; SQL lives in files, not in Python strings."""
    return (directory / f"{name}.sql").read_text(encoding="utf-8")


def lock_interval(cursor: psycopg.Cursor, namespace: str, interval: Interval) -> None:
    """Serialise writers of the same day until the current transaction ends.

    Two runs of one date (a retry overlapping a manual run, a backfill beside the schedule)
    would otherwise both delete and then both insert, doubling the day. Runs of different
    days do not wait for each other.
    """
    lock_resource(cursor, namespace, interval.day.toordinal())


def lock_resource(cursor: psycopg.Cursor, namespace: str, key: int = 0) -> None:
    """Hold ``(namespace, key)``'s advisory lock until the current transaction ends."""
    cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_namespace_key(namespace), key))


def _namespace_key(namespace: str) -> int:
    # A stable signed 32-bit key per pipeline: advisory locks take two int4 keys.
    return zlib.crc32(namespace.encode()) - 2**31
