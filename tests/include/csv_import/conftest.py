"""A fresh database per test, reached as the importer's least-privileged role, and a run helper.

The role is what the README asks a DBA for: it owns the ``csv_import`` schema, and has USAGE and
CREATE on the schema it imports into (``landing``, owned by someone else) and nothing more.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence

import psycopg
import pytest
from psycopg import sql

from devservices.postgres import LocalPostgres
from include.csv_import.ledger import (
    Mode,
    migrate_schema,
    record_columns,
    record_files,
    record_plan,
    start_run,
)
from include.csv_import.model import Chunk, Column, ColumnType, Dialect, SourceFile
from include.csv_import.table import TableName, create_staging, prepare_target

DEFAULT_DIALECT = Dialect()
IMPORTER_ROLE = "csv_importer"
IMPORTER_PASSWORD = "importer-password"
TARGET_SCHEMA = "landing"
TARGET = TableName(TARGET_SCHEMA, "certificates")

COLUMNS = (
    Column("id", "ID", ColumnType.INTEGER),
    Column("name", "Name", ColumnType.TEXT),
    Column("amount", "Amount", ColumnType.NUMERIC),
    Column("issued", "Issued", ColumnType.DATE),
)


@pytest.fixture
def csv_database(postgres_server: LocalPostgres, request: pytest.FixtureRequest) -> Iterator[str]:
    name = "csv_" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:16]
    postgres_server.drop_database(name)
    postgres_server.create_database(name)
    postgres_server.grant_schema(name, "csv_import", IMPORTER_ROLE, IMPORTER_PASSWORD)
    with psycopg.connect(postgres_server.conninfo(name), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(TARGET_SCHEMA)))
        admin.execute(
            sql.SQL("GRANT USAGE, CREATE ON SCHEMA {} TO {}").format(
                sql.Identifier(TARGET_SCHEMA), sql.Identifier(IMPORTER_ROLE)
            )
        )
    yield name
    postgres_server.drop_database(name)


@pytest.fixture
def importer_conninfo(postgres_server: LocalPostgres, csv_database: str) -> str:
    return postgres_server.conninfo(csv_database, user=IMPORTER_ROLE, password=IMPORTER_PASSWORD)


@pytest.fixture
def conn(importer_conninfo: str) -> Iterator[psycopg.Connection]:
    """The importer's connection, the ledger migrated (autocommit: each function opens its transaction)."""
    with psycopg.connect(importer_conninfo, autocommit=True) as connection:
        migrate_schema(connection)
        yield connection


@pytest.fixture
def admin(postgres_server: LocalPostgres, csv_database: str) -> Iterator[psycopg.Connection]:
    """A superuser on the same database: for what a DBA or another user does to the target."""
    with psycopg.connect(postgres_server.conninfo(csv_database), autocommit=True) as connection:
        yield connection


def wait_until_blocked(admin: psycopg.Connection, pid: int, thread: threading.Thread) -> None:
    """Return once ``pid`` waits for a lock: the order is then fixed, whatever the timing."""
    while thread.is_alive():
        waiting = admin.execute(
            "SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted", (pid,)
        ).fetchone()
        if waiting[0]:
            return
        thread.join(0.01)
    raise AssertionError("the second publish finished without waiting for the first")


def source(name: str, fingerprint: str = "v1", size: int = 1000) -> SourceFile:
    return SourceFile(f"file:///drop/{name}", None, size, fingerprint)


def whole(file: SourceFile) -> Chunk:
    return Chunk(file, 0, 0, None, 2)


StartRun = Callable[..., int]


@pytest.fixture
def start(conn: psycopg.Connection) -> StartRun:
    """Do what the stages before import do: register the run, its schema, files and plan; prepare."""

    def run(
        dag_run_id: str,
        files: Sequence[SourceFile],
        *,
        mode: Mode = Mode.APPEND,
        target: TableName = TARGET,
        columns: Sequence[Column] = COLUMNS,
        chunks: Sequence[Chunk] | None = None,
        dialect: Dialect = DEFAULT_DIALECT,
    ) -> int:
        run_id = start_run(conn, dag_run_id=dag_run_id, target=target, mode=mode, source="file:///drop").id
        record_columns(conn, run_id, columns)
        record_files(conn, run_id, [(f, dialect, [c.name for c in columns]) for f in files])
        record_plan(conn, run_id, chunks if chunks is not None else [whole(f) for f in files])
        prepare_target(conn, target, columns)
        create_staging(conn, run_id, target)
        return run_id

    return run
