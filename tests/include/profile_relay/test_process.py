"""The processor against a real PostgreSQL: each profile judged once, however many processors run."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from include.profile_relay import store
from include.profile_relay.generate import run_generator
from include.profile_relay.process import ProcessingStalled, run_processor
from include.profile_relay.profiles import ProfileFactory, in_age_range
from include.profile_relay.settings import RelaySpec
from tests.include.profile_relay.clocks import FakeClock
from tests.include.profile_relay.specs import relay_spec

TICK = datetime(2026, 12, 6, 12, tzinfo=UTC)


def registered(conn: psycopg.Connection, count: int) -> RelaySpec:
    spec = relay_spec(count=count)
    store.register_run(conn, spec)
    return spec


def generate(connect, spec: RelaySpec) -> None:
    factory = ProfileFactory(spec.locale, spec.seed, spec.reference_date)
    run_generator(connect, factory, run_id=spec.run_id, count=spec.count, interval=0)


def process(connect, spec: RelaySpec, **kwargs):
    kwargs = {"poll_seconds": 0.01, "batch": 50, **kwargs}
    return run_processor(connect, run_id=spec.run_id, **kwargs)


def expected_in_range(spec: RelaySpec) -> set[int]:
    factory = ProfileFactory(spec.locale, spec.seed, spec.reference_date)
    return {
        seq
        for seq in range(1, spec.count + 1)
        if in_age_range(factory.make(seq).birthdate, spec.reference_date, spec.age_min, spec.age_max)
    }


def outbox(conn: psycopg.Connection, run_id: str) -> set[int]:
    return {
        seq for (seq,) in conn.execute("SELECT seq FROM profile_relay.outbox WHERE run_id = %s", (run_id,))
    }


def test_a_generated_run_is_judged_and_its_in_range_profiles_queued(conn, connect) -> None:
    spec = registered(conn, 300)
    generate(connect, spec)

    result = process(connect, spec)

    in_range = expected_in_range(spec)
    assert 10 < len(in_range) < 80  # about 11 % of 300
    assert (result.judged, result.queued, result.batches) == (300, len(in_range), 6)
    assert outbox(conn, spec.run_id) == in_range
    record = store.run_record(conn, spec.run_id)
    assert record.processed_at == result.processed_at
    assert record.processed_at >= record.generated_at


def test_processing_a_processed_run_again_judges_nothing(conn, connect) -> None:
    spec = registered(conn, 20)
    generate(connect, spec)
    first = process(connect, spec)

    again = process(connect, spec)

    assert (again.judged, again.queued) == (0, 0)
    assert again.processed_at == first.processed_at


def test_two_processors_at_once_judge_each_profile_exactly_once(conn, connect) -> None:
    spec = registered(conn, 1000)
    generate(connect, spec)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: process(connect, spec, batch=20), range(2)))

    assert sum(r.judged for r in results) == 1000
    assert sum(r.queued for r in results) == len(expected_in_range(spec))
    assert outbox(conn, spec.run_id) == expected_in_range(spec)


def test_processing_while_generating_ends_with_every_profile_judged(conn, connect) -> None:
    spec = registered(conn, 400)

    with ThreadPoolExecutor(3) as pool:
        generated = pool.submit(generate, connect, spec)
        processors = [pool.submit(process, connect, spec, batch=25) for _ in range(2)]
        generated.result()
        judged = sum(p.result().judged for p in processors)

    assert judged == 400
    assert conn.execute(
        "SELECT count(*) FROM profile_relay.profiles WHERE run_id = %s AND judged_at IS NULL", (spec.run_id,)
    ).fetchone() == (0,)
    assert outbox(conn, spec.run_id) == expected_in_range(spec)
    record = store.run_record(conn, spec.run_id)
    assert record.processed_at >= record.generated_at


def test_a_processor_waiting_too_long_for_the_next_profile_fails_naming_it(conn, connect) -> None:
    spec = registered(conn, 50)
    factory = ProfileFactory(spec.locale, spec.seed, spec.reference_date)
    store.store_profiles(conn, spec.run_id, [(factory.make(seq), TICK) for seq in (1, 2, 3)])
    clock = FakeClock()

    with pytest.raises(
        ProcessingStalled, match=r"no new profile for 0:15:00, waiting for profile 4\..*generate"
    ):
        process(connect, spec, clock=clock, sleep=clock.sleep, poll_seconds=30)

    # It gave up after the stall limit of idle polls, having judged what there was.
    assert clock.now - 1000.0 == pytest.approx(15 * 60, abs=30)
    assert store.judging_state(conn, spec.run_id).unjudged is False


def test_an_idle_processor_keeps_waiting_while_profiles_keep_coming(conn, connect) -> None:
    spec = registered(conn, 3)
    factory = ProfileFactory(spec.locale, spec.seed, spec.reference_date)
    clock = FakeClock()
    seqs = iter([1, 2, 3])
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        # Each idle poll lasts 10 minutes of the fake clock, and a new profile arrives during it:
        # 30 minutes in all, twice the stall limit, yet never 15 minutes without a new profile.
        clock.sleep(600)
        with lock:
            seq = next(seqs, None)
        if seq is None:
            store.mark_generated(conn, spec.run_id)
        else:
            store.store_profiles(conn, spec.run_id, [(factory.make(seq), TICK)])

    result = process(connect, spec, clock=clock, sleep=sleep, stall_limit=timedelta(minutes=15))

    assert result.judged == 3


def test_a_processor_whose_connection_is_dropped_reconnects_and_judges_on(conn, relay_conninfo) -> None:
    spec = registered(conn, 200)
    factory = ProfileFactory(spec.locale, spec.seed, spec.reference_date)
    store.store_profiles(conn, spec.run_id, [(factory.make(seq), TICK) for seq in range(1, 101)])
    session = "relay-test-processor"
    polls = []

    def sleep(seconds: float) -> None:
        # While it waits for more: PostgreSQL drops its connection, and the rest of the run arrives.
        polls.append(seconds)
        if len(polls) == 1:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                (session,),
            )
            conn.commit()
            store.store_profiles(conn, spec.run_id, [(factory.make(seq), TICK) for seq in range(101, 201)])
            store.mark_generated(conn, spec.run_id)

    result = process(lambda: psycopg.connect(relay_conninfo, application_name=session), spec, sleep=sleep)

    assert (result.judged, result.reconnects) == (200, 1)
    assert outbox(conn, spec.run_id) == expected_in_range(spec)
