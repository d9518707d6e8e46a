"""A fresh database per test for the usage ingest's store, as the role that owns its schema."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from devservices.postgres import LocalPostgres
from include.usage_ingest.store import SCHEMA, migrate_schema
from tests.conftest import schema_owner_database

ROLE = "usage_ingest"
PASSWORD = "usage-password"


@pytest.fixture
def usage_conninfo(postgres_server: LocalPostgres, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database per test whose role owns the usage_ingest schema and nothing else."""
    with schema_owner_database(
        postgres_server, request.node.nodeid, prefix="usage_", schema=SCHEMA, role=ROLE, password=PASSWORD
    ) as name:
        yield postgres_server.conninfo(name, user=ROLE, password=PASSWORD)


@pytest.fixture
def conn(usage_conninfo: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(usage_conninfo) as conn:
        assert migrate_schema(conn) == ["0001_store"]
        yield conn
