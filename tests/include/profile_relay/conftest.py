"""A fresh database per test for the relay's store, as the role that owns its schema."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

import psycopg
import pytest

from devservices.postgres import LocalPostgres
from include.profile_relay.store import SCHEMA, migrate_schema

ROLE = "profile_relay"
PASSWORD = "relay-password"


@pytest.fixture
def relay_conninfo(postgres_server: LocalPostgres, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database per test whose role owns the profile_relay schema and nothing else."""
    name = "relay_" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:16]
    postgres_server.drop_database(name)
    postgres_server.create_database(name)
    postgres_server.grant_schema(name, SCHEMA, ROLE, PASSWORD)
    yield postgres_server.conninfo(name, user=ROLE, password=PASSWORD)
    postgres_server.drop_database(name)


@pytest.fixture
def connect(relay_conninfo: str) -> Callable[[], psycopg.Connection]:
    """What the stages take: a callable opening a new connection to the migrated store."""
    with psycopg.connect(relay_conninfo) as conn:
        assert migrate_schema(conn) == ["0001_relay"]
    return lambda: psycopg.connect(relay_conninfo)


@pytest.fixture
def conn(connect: Callable[[], psycopg.Connection]) -> Iterator[psycopg.Connection]:
    with connect() as conn:
        yield conn
