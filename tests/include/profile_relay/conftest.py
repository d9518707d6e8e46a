"""A fresh database per test for the relay's store, as the role that owns its schema."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest

from devservices.postgres import LocalPostgres
from include.profile_relay.store import SCHEMA, migrate_schema
from tests.conftest import schema_owner_database

ROLE = "profile_relay"
PASSWORD = "relay-password"
# The application_name of the stages' sessions in tests.
APPLICATION = "profile-relay-test"


@pytest.fixture
def relay_conninfo(postgres_server: LocalPostgres, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, migrated store per test, as the role that owns the profile_relay schema and nothing else."""
    with schema_owner_database(
        postgres_server, request.node.nodeid, prefix="relay_", schema=SCHEMA, role=ROLE, password=PASSWORD
    ) as name:
        conninfo = postgres_server.conninfo(name, user=ROLE, password=PASSWORD)
        with psycopg.connect(conninfo) as conn:
            assert migrate_schema(conn) == ["0001_relay"]
        yield conninfo


@pytest.fixture
def connect(relay_conninfo: str) -> Callable[[], psycopg.Connection]:
    """What the stages take: a callable opening a new connection to the store.

    Its sessions carry ``APPLICATION``, so a test can find and cut them in ``pg_stat_activity``.
    """
    return lambda: psycopg.connect(relay_conninfo, application_name=APPLICATION)


@pytest.fixture
def conn(connect: Callable[[], psycopg.Connection]) -> Iterator[psycopg.Connection]:
    with connect() as conn:
        yield conn
