"""A stage's store connection waits out a PostgreSQL that is away, for a bounded time, on a fake clock."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from devservices.postgres import free_port
from include.profile_relay.reconnect import Backoff, ReconnectingStore, StoreOutage
from tests.include.profile_relay.clocks import FakeClock


def refused(relay_conninfo: str) -> str:
    """The store's address on a port nobody listens on: connecting is refused at once."""
    return psycopg.conninfo.make_conninfo(relay_conninfo, port=free_port(), connect_timeout=2)


def test_waits_double_up_to_the_maximum() -> None:
    delays = Backoff(initial=0.1, maximum=1.0).delays()
    assert [next(delays) for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_a_store_away_longer_than_the_limit_fails_saying_the_retry_resumes(relay_conninfo: str) -> None:
    clock = FakeClock()
    address = refused(relay_conninfo)
    db = ReconnectingStore(
        lambda: psycopg.connect(address), outage_limit=timedelta(seconds=2), clock=clock, sleep=clock.sleep
    )

    with pytest.raises(
        StoreOutage, match=r"reading: PostgreSQL unreachable for 3 s.*retry resumes"
    ) as failure:
        db.run(lambda conn: conn.execute("SELECT 1").fetchone(), what="reading")

    assert clock.sleeps == [0.1, 0.2, 0.4, 0.8, 1.6]
    assert "relay-password" not in str(failure.value)


def test_a_store_back_within_the_limit_runs_the_step_on_a_new_connection(
    relay_conninfo: str, connect
) -> None:
    clock = FakeClock()
    address = refused(relay_conninfo)
    attempts = []

    def connect_on_the_third_try() -> psycopg.Connection:
        attempts.append(len(attempts) + 1)
        return psycopg.connect(relay_conninfo if len(attempts) >= 3 else address)

    with ReconnectingStore(
        connect_on_the_third_try, outage_limit=timedelta(minutes=2), clock=clock, sleep=clock.sleep
    ) as db:
        assert db.run(lambda conn: conn.execute("SELECT 42").fetchone(), what="reading") == (42,)

    assert (attempts, clock.sleeps, db.reconnects) == ([1, 2, 3], [0.1, 0.2], 1)


def test_an_error_that_is_not_the_connection_is_not_retried(connect) -> None:
    with (
        ReconnectingStore(connect, outage_limit=timedelta(minutes=2)) as db,
        pytest.raises(psycopg.errors.UndefinedTable),
    ):
        db.run(lambda conn: conn.execute("SELECT * FROM nowhere"), what="reading")
