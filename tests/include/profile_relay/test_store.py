"""The relay's store against a real PostgreSQL: runs, profile batches, judging once, the books."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from include.common.postgres import read_sql
from include.profile_relay import store
from include.profile_relay.profiles import Profile, ProfileFactory, age_on
from include.profile_relay.settings import RelaySpec
from tests.include.profile_relay.specs import REFERENCE_DATE, relay_spec

TICK = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def person(seq: int, born: date) -> Profile:
    """A profile with a chosen birthdate: what judging reads."""
    return Profile(
        seq, f"Person {seq}", "F", "Tester", born, {"name": f"Person {seq}", "birthdate": str(born)}
    )


def ticked(profiles: list[Profile]) -> list[tuple[Profile, datetime]]:
    return [(profile, TICK + timedelta(seconds=profile.seq / 2)) for profile in profiles]


def registered(conn: psycopg.Connection, **params) -> RelaySpec:
    spec = relay_spec(**params)
    assert store.register_run(conn, spec) is True
    return spec


def test_migrating_twice_applies_nothing_the_second_time(conn: psycopg.Connection) -> None:
    assert store.migrate_schema(conn) == []


def test_a_run_registers_once_and_again_with_the_same_settings(conn: psycopg.Connection) -> None:
    spec = registered(conn, count=3000, interval_seconds=0.1)

    assert store.register_run(conn, spec) is False
    record = store.run_record(conn, spec.run_id)
    assert (record.count, record.seed, record.locale, record.reference_date) == (
        3000,
        spec.seed,
        "ru_RU",
        REFERENCE_DATE,
    )
    assert (record.age_min, record.age_max, record.interval_seconds) == (30, 40, 0.1)
    assert record.generated_at is record.processed_at is record.sent_at is None


def test_registering_a_run_again_with_other_settings_is_refused_naming_them(conn: psycopg.Connection) -> None:
    spec = registered(conn, count=3000)

    with pytest.raises(store.RunConflict, match=r"count 3000 \(now 10\), age_max 40 \(now 50\).*new run"):
        store.register_run(conn, dataclasses.replace(spec, count=10, age_max=50))
    assert store.run_record(conn, spec.run_id).count == 3000


def test_a_stage_of_a_run_never_registered_says_to_clear_prepare(conn: psycopg.Connection) -> None:
    with pytest.raises(store.RunNotRegistered, match="prepare"):
        store.run_record(conn, "nobody")
    with pytest.raises(store.RunNotRegistered):
        store.judging_state(conn, "nobody")


def test_profiles_are_stored_in_batches_and_generation_resumes_after_the_last(
    conn: psycopg.Connection,
) -> None:
    spec = registered(conn, count=5)
    factory = ProfileFactory(spec.locale, spec.seed, spec.reference_date)
    assert store.next_seq(conn, spec.run_id) == 1

    assert store.store_profiles(conn, spec.run_id, ticked([factory.make(seq) for seq in (1, 2, 3)])) == 3
    assert store.next_seq(conn, spec.run_id) == 4
    # A batch retried after its COMMIT did reach the server: nothing twice.
    assert store.store_profiles(conn, spec.run_id, ticked([factory.make(seq) for seq in (2, 3, 4)])) == 1
    assert store.next_seq(conn, spec.run_id) == 5

    stored = conn.execute(
        "SELECT seq, ticked_at, birthdate, profile FROM profile_relay.profiles ORDER BY seq"
    ).fetchall()
    third = factory.make(3)
    assert stored[2] == (3, TICK + timedelta(seconds=1.5), third.birthdate, third.data)


def test_a_run_is_generated_only_once_every_profile_is_stored(conn: psycopg.Connection) -> None:
    spec = registered(conn, count=3)
    store.store_profiles(
        conn, spec.run_id, ticked([person(1, date(1990, 1, 1)), person(2, date(1990, 1, 1))])
    )

    with pytest.raises(RuntimeError, match="2 of 3 profiles are stored"):
        store.mark_generated(conn, spec.run_id)
    store.store_profiles(conn, spec.run_id, ticked([person(3, date(1990, 1, 1))]))
    first = store.mark_generated(conn, spec.run_id)

    assert store.mark_generated(conn, spec.run_id) == first
    assert store.run_record(conn, spec.run_id).generated_at == first


# Birthdates around the edges of 30..40 on 2026-12-06, and 29 February ones on a 28 February.
EDGES = [
    date(1996, 12, 7),  # 29
    date(1996, 12, 6),  # 30 today
    date(1985, 12, 7),  # 40
    date(1985, 12, 6),  # 41 today
    date(1996, 2, 29),
    date(1988, 2, 29),
    date(1990, 3, 1),
    date(2026, 12, 6),
    date(1926, 12, 6),
]


@pytest.mark.parametrize(
    "reference", [REFERENCE_DATE, date(2026, 2, 28), date(2026, 3, 1), date(2028, 2, 29)]
)
def test_judging_counts_ages_as_age_on_does(conn: psycopg.Connection, reference: date) -> None:
    spec = dataclasses.replace(relay_spec(count=len(EDGES)), reference_date=reference)
    store.register_run(conn, spec)
    born = [b for b in EDGES if b <= reference]
    store.store_profiles(conn, spec.run_id, ticked([person(seq, b) for seq, b in enumerate(born, 1)]))

    store.judge_batch(conn, spec.run_id)

    judged = conn.execute(
        "SELECT birthdate, age, in_range FROM profile_relay.profiles ORDER BY seq"
    ).fetchall()
    assert judged == [(b, age_on(b, reference), 30 <= age_on(b, reference) <= 40) for b in born]


def test_judging_takes_the_lowest_seqs_first_and_queues_the_in_range_ones(conn: psycopg.Connection) -> None:
    spec = registered(conn, count=len(EDGES))
    store.store_profiles(conn, spec.run_id, ticked([person(seq, b) for seq, b in enumerate(EDGES, 1)]))

    first = store.judge_batch(conn, spec.run_id, limit=4)
    rest = store.judge_batch(conn, spec.run_id, limit=100)
    after = store.judge_batch(conn, spec.run_id)

    assert first == store.Judged(judged=4, queued=2, last_seq=4)
    assert (rest.judged, rest.last_seq) == (5, 9)
    assert after == store.Judged(judged=0, queued=0, last_seq=None)
    in_range = {seq for seq, b in enumerate(EDGES, 1) if 30 <= age_on(b, REFERENCE_DATE) <= 40}
    queued = {seq for (seq,) in conn.execute("SELECT seq FROM profile_relay.outbox")}
    assert queued == in_range
    assert first.queued + rest.queued == len(in_range)


def test_a_second_processor_skips_the_profiles_the_first_holds(conn: psycopg.Connection, connect) -> None:
    spec = registered(conn, count=6)
    store.store_profiles(conn, spec.run_id, ticked([person(seq, date(1990, 6, 1)) for seq in range(1, 7)]))

    with connect() as other, other.transaction():
        # The other processor's batch, judged but not committed: its rows stay locked.
        held = other.execute(
            read_sql(store.SQL_DIR, "judge_batch"), {"run_id": spec.run_id, "limit": 4}
        ).fetchone()
        assert held[0] == 4
        mine = store.judge_batch(conn, spec.run_id)
        assert mine == store.Judged(judged=2, queued=2, last_seq=6)
    # Committed now: nothing is left, and nothing was judged or queued twice.
    assert store.judge_batch(conn, spec.run_id).judged == 0
    assert conn.execute("SELECT count(*) FROM profile_relay.outbox").fetchone() == (6,)


def test_a_run_is_processed_once_generated_and_every_profile_judged(conn: psycopg.Connection) -> None:
    spec = registered(conn, count=2)
    store.store_profiles(
        conn, spec.run_id, ticked([person(1, date(1990, 6, 1)), person(2, date(2000, 1, 1))])
    )
    store.judge_batch(conn, spec.run_id)

    assert store.mark_processed(conn, spec.run_id) is None  # all judged, but not marked generated
    assert store.judging_state(conn, spec.run_id) == store.JudgingState(
        generated=False, unjudged=False, stored=2
    )
    store.mark_generated(conn, spec.run_id)
    processed = store.mark_processed(conn, spec.run_id)

    assert processed is not None
    assert store.mark_processed(conn, spec.run_id) == processed
    assert processed >= store.run_record(conn, spec.run_id).generated_at


def test_progress_counts_each_stage(conn: psycopg.Connection) -> None:
    spec = registered(conn, count=4)
    born = [date(1990, 6, 1), date(2000, 1, 1), date(1991, 1, 1), date(1950, 1, 1)]
    store.store_profiles(conn, spec.run_id, ticked([person(seq, b) for seq, b in enumerate(born, 1)]))
    store.judge_batch(conn, spec.run_id, limit=3)
    # What the send stage does for a delivered profile: out of the outbox, into deliveries.
    conn.execute("DELETE FROM profile_relay.outbox WHERE seq = 1")
    conn.execute(
        "INSERT INTO profile_relay.deliveries (run_id, seq, idempotency_key, outcome, attempts, queued_at) "
        "VALUES (%s, 1, %s, 'accepted', 1, now())",
        (spec.run_id, f"{spec.run_id}/1"),
    )
    conn.execute(
        "INSERT INTO profile_relay.send_failures (run_id, profiles, kind, detail) "
        "VALUES (%s, 2, 'refused', 'connection refused')",
        (spec.run_id,),
    )
    conn.commit()

    progress = store.run_progress(conn, spec.run_id)

    assert (progress.count, progress.stored, progress.judged, progress.in_range) == (4, 4, 3, 2)
    assert (progress.queued, progress.delivered, progress.duplicates, progress.delivered_out_of_range) == (
        1,
        1,
        0,
        0,
    )
    # Not generated yet: the delivery happened while generation was going on.
    assert (progress.delivered_while_generating, progress.failed_sends) == (0, 2)
    assert store.failures_by_kind(conn, spec.run_id) == {"refused": (1, 2)}


def test_tick_stats_measure_the_gaps_between_ticks(conn: psycopg.Connection) -> None:
    spec = registered(conn, count=4)
    store.store_profiles(conn, spec.run_id, ticked([person(seq, date(1990, 6, 1)) for seq in range(1, 5)]))

    assert store.tick_stats(conn, spec.run_id) == store.TickStats(
        gaps=3, median_gap=0.5, min_gap=0.5, max_gap=0.5
    )
