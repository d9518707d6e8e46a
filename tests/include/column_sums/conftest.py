from __future__ import annotations

from collections.abc import Iterator

import pytest

from devservices.postgres import LocalPostgres
from include.column_sums.results import SCHEMA
from tests.conftest import schema_owner_database

ROLE = "column_sums"
PASSWORD = "column-sums-password"


@pytest.fixture
def results_conninfo(postgres_server: LocalPostgres, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database per test whose column_sums schema (empty) belongs to the pipeline's role."""
    with schema_owner_database(
        postgres_server, request.node.nodeid, prefix="sums_", schema=SCHEMA, role=ROLE, password=PASSWORD
    ) as name:
        yield postgres_server.conninfo(name, user=ROLE, password=PASSWORD)
