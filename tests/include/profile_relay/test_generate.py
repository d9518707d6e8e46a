"""The generator against a real PostgreSQL: every profile stored once, resumable, ticks never wait."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import psycopg
import pytest

from devservices.postgres import free_port
from include.profile_relay import store
from include.profile_relay.generate import run_generator
from include.profile_relay.profiles import Profile, ProfileFactory
from include.profile_relay.reconnect import StoreOutage
from include.profile_relay.settings import RelaySpec
from tests.include.profile_relay.specs import relay_spec


class Crash(Exception):
    """The generator's process dying at a chosen profile."""


class CrashingFactory(ProfileFactory):
    """The run's real factory, whose process dies when it is about to make profile ``crash_at``."""

    def __init__(self, spec: RelaySpec, crash_at: int) -> None:
        super().__init__(spec.locale, spec.seed, spec.reference_date)
        self.crash_at = crash_at

    def make(self, seq: int) -> Profile:
        if seq == self.crash_at:
            raise Crash(seq)
        return super().make(seq)


def factory_of(spec: RelaySpec) -> ProfileFactory:
    return ProfileFactory(spec.locale, spec.seed, spec.reference_date)


def stored(conn: psycopg.Connection, run_id: str) -> dict[int, tuple]:
    rows = conn.execute(
        "SELECT seq, birthdate, profile, ticked_at FROM profile_relay.profiles WHERE run_id = %s", (run_id,)
    )
    return {seq: (birthdate, profile, ticked_at) for seq, birthdate, profile, ticked_at in rows}


@pytest.fixture
def spec(conn: psycopg.Connection) -> RelaySpec:
    spec = relay_spec(count=60)
    store.register_run(conn, spec)
    return spec


def test_a_run_generates_its_count_and_is_marked_generated(conn, connect, spec: RelaySpec) -> None:
    result = run_generator(connect, factory_of(spec), run_id=spec.run_id, count=spec.count, interval=0)

    assert (result.first_seq, result.stored, result.count) == (1, 60, 60)
    profiles = stored(conn, spec.run_id)
    expected = factory_of(spec)
    assert sorted(profiles) == list(range(1, 61))
    assert all(
        profiles[seq][:2] == (expected.make(seq).birthdate, expected.make(seq).data) for seq in profiles
    )
    assert store.run_record(conn, spec.run_id).generated_at == result.generated_at


def test_a_retry_after_a_crash_resumes_with_identical_profiles(conn, connect, spec: RelaySpec) -> None:
    with pytest.raises(Crash):
        run_generator(connect, CrashingFactory(spec, crash_at=25), run_id=spec.run_id, count=60, interval=0)
    before = stored(conn, spec.run_id)
    assert sorted(before) == list(range(1, 25))
    assert store.run_record(conn, spec.run_id).generated_at is None

    retry = run_generator(connect, factory_of(spec), run_id=spec.run_id, count=60, interval=0)

    assert (retry.first_seq, retry.stored) == (25, 36)
    after = stored(conn, spec.run_id)
    # The same people as one uninterrupted run makes; the first try's rows are kept as they were.
    fresh = factory_of(spec)
    assert all(after[seq][1] == fresh.make(seq).data for seq in range(1, 61))
    assert all(after[seq] == before[seq] for seq in before)


def test_a_generated_run_run_again_makes_nothing(conn, connect, spec: RelaySpec) -> None:
    first = run_generator(connect, factory_of(spec), run_id=spec.run_id, count=60, interval=0)
    again = run_generator(connect, factory_of(spec), run_id=spec.run_id, count=60, interval=0)

    assert (again.first_seq, again.stored) == (61, 0)
    assert again.generated_at == first.generated_at


SESSION = "relay-test-generator"


class StoreGoesAway(ProfileFactory):
    """The run's factory; just before profile 1 (nothing is stored yet) PostgreSQL drops the
    generator's connection, and it may connect again only once every profile has been ticked."""

    def __init__(self, spec: RelaySpec, admin: psycopg.Connection) -> None:
        super().__init__(spec.locale, spec.seed, spec.reference_date)
        self.count = spec.count
        self.admin = admin
        self.all_ticked = threading.Event()

    def make(self, seq: int) -> Profile:
        if seq == 1:
            self.admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                (SESSION,),
            )
            self.admin.commit()
        if seq == self.count:
            self.all_ticked.set()
        return super().make(seq)


def connector(conninfo: str, *, back_when: threading.Event | None) -> Callable[[], psycopg.Connection]:
    """Connects once; then to a port nobody listens on until ``back_when`` is set (never if None)."""
    refused = psycopg.conninfo.make_conninfo(conninfo, port=free_port(), connect_timeout=2)
    opened = threading.Event()

    def connect() -> psycopg.Connection:
        back = not opened.is_set() or (back_when is not None and back_when.is_set())
        opened.set()
        return psycopg.connect(conninfo if back else refused, application_name=SESSION)

    return connect


def test_ticks_go_on_while_the_store_is_away(conn, relay_conninfo: str, spec: RelaySpec) -> None:
    """Had a tick waited for the store, this run would never end: the store is back only once
    every profile has been ticked."""
    factory = StoreGoesAway(spec, conn)

    result = run_generator(
        connector(relay_conninfo, back_when=factory.all_ticked),
        factory,
        run_id=spec.run_id,
        count=spec.count,
        interval=0,
    )

    assert result.reconnects >= 1
    assert result.stored == spec.count
    last_tick, first_stored = conn.execute(
        "SELECT max(ticked_at), min(stored_at) FROM profile_relay.profiles WHERE run_id = %s", (spec.run_id,)
    ).fetchone()
    assert last_tick < first_stored


def test_a_store_away_for_longer_than_the_limit_fails_the_task(conn, relay_conninfo: str, spec) -> None:
    with pytest.raises(StoreOutage, match=r"PostgreSQL unreachable for .*The task's retry resumes"):
        run_generator(
            connector(relay_conninfo, back_when=None),
            StoreGoesAway(spec, conn),
            run_id=spec.run_id,
            count=spec.count,
            interval=0,
            outage_limit=timedelta(0),
        )
    assert store.run_record(conn, spec.run_id).generated_at is None
