"""The fault table of ``user_profiles_relay``: every in-range profile delivered exactly once.

Each test runs one run's three stages at the same time, as the DAG does (``generate``,
``process`` and ``send``, each in a worker process of its own: see
``tests/reliability/profile_relay_harness.py``), against a real PostgreSQL and the real receiver
(``devservices.profile_receiver``), injects one fault, lets the run recover as Airflow would (a
try that fails or is SIGKILLed is followed by a new process running the same stage), and judges
from the receiver's own store and the pipeline's: every profile of the run aged 30..40 on its
reference date (counted by the harness from the people regenerated from the run's seed) held by
the receiver once, with the content generated and under its key, and nothing else; the outbox
empty, the store's deliveries exactly those, and ``sent_at`` after ``processed_at``. Each test
adds its row to the ``user_profiles_relay`` section of docs/RELIABILITY.md, with what it measured
(failed sends, duplicates the receiver dropped, the generator's ticks while the fault lasted).

Where a fault must strike inside a batch, the test makes the batch wait there rather than
racing it: the receiver holds the POST (its ``timeout`` fault), or the test holds a lock on the
deliveries table until PostgreSQL shows the sender waiting for it, after the receiver stored the
batch and before the store recorded it. Faults that strike "mid-run" are started once the run
has delivered a few profiles, polled from the store. How regular the ticks were is reported,
never asserted: it depends on the machine. What is asserted is what the design guarantees
whatever the machine: the generator ticked while the fault lasted (it waits for nothing).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from devservices.postgres import LocalPostgres
from devservices.profile_receiver import ProfileReceiver
from include.profile_relay.send import ReceiverClient, idempotency_key
from include.profile_relay.settings import DAG_ID
from tests.conftest import wait_for
from tests.reliability.conftest import FaultDatabase, record_harness_row, wait_until_blocked, warehouse_db
from tests.reliability.profile_relay_harness import (
    Expected,
    RelayOutcome,
    RelayRun,
    TickJitter,
)

pytestmark = pytest.mark.timeout(180)

# Short ticks, so that a run of a few hundred profiles spans its fault in seconds.
INTERVAL = 0.05
OUTAGE_S = 10
PG_DOWN_S = 2
DROPS = 3


@pytest.fixture
def database(cluster: LocalPostgres, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):
    with warehouse_db(cluster, monkeypatch, request, prefix="relay_") as name:
        yield FaultDatabase(cluster, name)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[ProfileReceiver]:
    with ProfileReceiver(tmp_path / "receiver.sqlite") as server:
        yield server


@pytest.fixture
def relay(
    database: FaultDatabase, receiver: ProfileReceiver, tmp_path: Path
) -> Iterator[Callable[..., RelayRun]]:
    """Registers a run of ``count`` profiles; its workers still running at the end are killed."""
    runs: list[RelayRun] = []

    def register(count: int, interval: float = INTERVAL) -> RelayRun:
        run = RelayRun.register(database.conninfo, receiver, tmp_path, count=count, interval_seconds=interval)
        runs.append(run)
        return run

    yield register
    for run in runs:
        run.stop()


def now() -> datetime:
    return datetime.now(UTC)


def record(
    fault_table: list[dict[str, Any]],
    *,
    fault: str,
    injection: str,
    behaviour: str,
    outcome: RelayOutcome,
    ticks: TickJitter,
) -> None:
    record_harness_row(
        fault_table,
        pipeline=DAG_ID,
        fault=fault,
        injection=injection,
        behaviour=behaviour,
        outcome=outcome,
        ticks=str(ticks),
    )


def delivered_at_least(run: RelayRun, n: int) -> None:
    wait_for(lambda: run.progress().delivered >= n, f"the run never delivered {n} profiles")


def kinds(failures: dict[str, tuple[int, int]]) -> str:
    return ", ".join(f"{sends} {kind}" for kind, (sends, _) in sorted(failures.items())) or "none"


def test_the_receiver_down_for_10_s_mid_run(relay, receiver: ProfileReceiver, fault_table) -> None:
    run = relay(count=300)  # 15 s of ticks: the outage starts early and ends before the last
    expected = Expected.of(run.spec)
    run.start()
    delivered_at_least(run, 3)
    before = run.progress()
    down_at = now()
    receiver.set_fault("down", seconds=OUTAGE_S)
    wait_for(lambda: not receiver.is_down(), "the receiver never came back", timeout_s=OUTAGE_S + 30)
    up_at = now()
    tries = run.finish()

    outcome = RelayOutcome.measure(run, expected)
    ticks = run.ticks(down_at, up_at)
    failures = run.failures()
    record(
        fault_table,
        fault=f"receiver down for {OUTAGE_S} s mid-run",
        injection=f"the receiver's `down` fault after {before.delivered} deliveries: its listening socket "
        f"closed and open connections cut, connections refused for {OUTAGE_S} s, then listening again "
        "on the same port",
        behaviour=f"send kept failing and backing off (failed sends: {kinds(failures)}), the profiles "
        "stayed in the outbox; generate and process went on, and send delivered the backlog once the "
        f"receiver was back{_resent(outcome, 'whose connection the receiver cut as it went down')}; "
        f"tries: {_tries(tries)}",
        outcome=outcome,
        ticks=ticks,
    )
    # The generator waits for nothing downstream: it ticked while the receiver was away.
    assert ticks.ticks > 1, ticks
    assert "refused" in failures, failures
    assert tries == {"generate": 1, "process": 1, "send": 1}
    assert outcome.exact, outcome


def test_the_receiver_accepting_then_dropping_the_connection(
    relay, receiver: ProfileReceiver, fault_table
) -> None:
    run = relay(count=150)
    expected = Expected.of(run.spec)
    run.start()
    delivered_at_least(run, 1)
    armed_at = now()
    receiver.set_fault("drop_after_accept", times=DROPS)
    wait_for(lambda: receiver.fault_state()["fault"] is None, f"the receiver never got {DROPS} batches")
    dropped_at = now()
    tries = run.finish()

    outcome = RelayOutcome.measure(run, expected)
    failures = run.failures()
    resets, resent = failures.get("reset", (0, 0))
    duplicates = _duplicate_deliveries(run)
    record(
        fault_table,
        fault=f"receiver accepting then dropping the connection ({DROPS} batches in a row)",
        injection=f"the receiver's `drop_after_accept` fault for the next {DROPS} batches: each stored, then "
        "its connection closed without an answer",
        behaviour=f"send saw {resets} dropped connections (carrying {resent} profiles, a resend counted "
        "again) and sent those profiles again with the next batch; the receiver answered `duplicate` for "
        f"the {duplicates} it had stored, which the store recorded as delivered once (outcome duplicate); "
        f"tries: {_tries(tries)}",
        outcome=outcome,
        ticks=run.ticks(armed_at, dropped_at),
    )
    assert failures.keys() == {"reset"}, failures
    assert resets == DROPS
    # Every profile of a dropped batch was posted once more per drop: the receiver dropped each.
    assert outcome.duplicates_dropped == resent
    assert duplicates >= 1
    assert outcome.exact, outcome


def test_send_killed_mid_batch_twice(
    relay, receiver: ProfileReceiver, database: FaultDatabase, fault_table
) -> None:
    run = relay(count=200)
    expected = Expected.of(run.spec)
    run.start()
    delivered_at_least(run, 1)
    first_kill_at = now()

    # Kill 1: the batch posted, the receiver holding it unanswered (and unstored).
    receiver.set_fault("timeout", times=1, seconds=60)
    wait_for(lambda: receiver.fault_state()["fault"] is None, "no batch reached the receiver")
    run.kill("send")
    run.try_stage("send")

    # Kill 2: the batch stored by the receiver, its deliveries not yet recorded by the store.
    with DeliveriesLocked(database.conninfo):
        wait_until_blocked(database.conninfo, application_name=run.session("send"))
        run.kill("send")
    unrecorded = set(receiver.accepted_keys()) - _delivered_keys(run)
    second_kill_at = now()
    run.try_stage("send")
    tries = run.finish()

    outcome = RelayOutcome.measure(run, expected)
    recorded_as = _outcomes_of(run, unrecorded)
    record(
        fault_table,
        fault="`send` SIGKILLed mid-batch, twice",
        injection="SIGKILL of the send worker (1) while the receiver held its POST unanswered (the "
        "receiver's `timeout` fault), (2) while the retry waited, inside its batch's transaction, for a "
        f"lock the test held on the deliveries table, after the receiver had stored the batch "
        f"(profiles the receiver held and the store did not record: {len(unrecorded)})",
        behaviour="PostgreSQL rolled back each killed claim, so its profiles stayed in the outbox; each "
        "retry (a new worker) claimed and sent them again; the receiver answered `duplicate` for the "
        f"{len(unrecorded)} it had stored, recorded as delivered once ({_counted(recorded_as)}); "
        f"tries: {_tries(tries)}",
        outcome=outcome,
        ticks=run.ticks(first_kill_at, second_kill_at),
    )
    assert unrecorded, "the receiver had not stored the batch the sender was killed in"
    assert recorded_as == {"duplicate": len(unrecorded)}
    assert tries["send"] == 3
    assert outcome.exact, outcome


def test_postgres_restarted_mid_run(relay, database: FaultDatabase, fault_table) -> None:
    run = relay(count=200)
    expected = Expected.of(run.spec)
    run.start()
    delivered_at_least(run, 3)
    stopped_at = now()
    database.cluster.stop()
    # Down for a while, not just the restart's fraction of a second: the ticks must go on meanwhile.
    time.sleep(PG_DOWN_S)
    database.cluster.start()
    back_at = now()
    tries = run.finish()

    outcome = RelayOutcome.measure(run, expected)
    ticks = run.ticks(stopped_at, back_at)
    reconnects = {stage: run.stages[stage].result().get("reconnects") for stage in ("generate", "process")}
    record(
        fault_table,
        fault="PostgreSQL restarted mid-run",
        injection=f"`pg_ctl stop -m fast` (every session terminated), {PG_DOWN_S} s down, then "
        f"`pg_ctl start`: {(back_at - stopped_at).total_seconds():.1f} s in all, while the three stages ran",
        behaviour="each stage lost its connection, waited and reconnected, and repeated the step it was "
        "in (a step is one transaction, safe to repeat); the generator's writer held the ticked profiles "
        "in its queue meanwhile and stored them in the batch after; reconnects: "
        + ", ".join(f"{stage} {n}" for stage, n in reconnects.items())
        + _resent(outcome, "posted in a transaction the stop rolled back")
        + f"; tries: {_tries(tries)}",
        outcome=outcome,
        ticks=ticks,
    )
    # The generator's ticks do not wait for the store: they went on while it was away.
    assert ticks.ticks > 1, ticks
    # The stages ride a restart out on their own: no try failed.
    assert tries == {"generate": 1, "process": 1, "send": 1}
    assert all(n >= 1 for n in reconnects.values()), reconnects
    assert outcome.exact, outcome


def test_the_measure_sees_a_profile_lost_doubled_sent_out_of_range_or_left_queued(
    relay, receiver: ProfileReceiver, database: FaultDatabase, tmp_path: Path
) -> None:
    """The rows above read 0 / 0 / 0 because the run was exact, not because the measure is blind."""
    run = relay(count=80, interval=0)
    expected = Expected.of(run.spec)
    run.start().finish()
    assert RelayOutcome.measure(run, expected).exact
    first, second, *_ = sorted(expected.in_range)
    out_of_range = min(set(expected.profiles) - expected.in_range)
    with sqlite3.connect(tmp_path / "receiver.sqlite") as receiver_db:
        receiver_db.execute("DELETE FROM accepted WHERE key = ?", (idempotency_key(run.spec.run_id, first),))
    with ReceiverClient(receiver.url) as client:
        client.post_batch(
            [
                ("another-run/1", expected.profiles[second]),
                ("another-run/2", expected.profiles[out_of_range]),
            ]
        )
    with psycopg.connect(database.conninfo) as conn:
        conn.execute(
            "WITH undone AS (DELETE FROM profile_relay.deliveries WHERE run_id = %s AND seq = %s"
            " RETURNING run_id, seq) INSERT INTO profile_relay.outbox (run_id, seq) SELECT * FROM undone",
            (run.spec.run_id, second),
        )

    outcome = RelayOutcome.measure(run, expected)

    assert (outcome.lost, outcome.doubled, outcome.out_of_range_sent) == (1, 1, 1)
    assert (outcome.foreign_or_altered, outcome.outbox_left, outcome.deliveries_off) == (2, 1, 1)
    assert not outcome.exact


class DeliveriesLocked:
    """Hold ``profile_relay.deliveries`` in SHARE mode: a sender recording a delivery waits for it."""

    def __init__(self, conninfo: str) -> None:
        self._conn = psycopg.connect(conninfo)

    def __enter__(self) -> DeliveriesLocked:
        self._conn.execute("LOCK TABLE profile_relay.deliveries IN SHARE MODE")
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.rollback()
        self._conn.close()


def _delivered_keys(run: RelayRun) -> set[str]:
    with psycopg.connect(run.conninfo) as conn:
        return {
            key
            for (key,) in conn.execute(
                "SELECT idempotency_key FROM profile_relay.deliveries WHERE run_id = %s", (run.spec.run_id,)
            )
        }


def _outcomes_of(run: RelayRun, keys: set[str]) -> dict[str, int]:
    """How the store recorded the deliveries of ``keys``: outcome -> profiles."""
    with psycopg.connect(run.conninfo) as conn:
        return dict(
            conn.execute(
                "SELECT outcome, count(*) FROM profile_relay.deliveries"
                " WHERE idempotency_key = ANY(%s) GROUP BY outcome",
                (list(keys),),
            ).fetchall()
        )


def _duplicate_deliveries(run: RelayRun) -> int:
    with psycopg.connect(run.conninfo) as conn:
        (n,) = conn.execute(
            "SELECT count(*) FROM profile_relay.deliveries WHERE run_id = %s AND outcome = 'duplicate'",
            (run.spec.run_id,),
        ).fetchone()
    return n


def _counted(outcomes: dict[str, int]) -> str:
    return ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items())) or "none"


def _resent(outcome: RelayOutcome, batch: str) -> str:
    """What the row says of profiles sent again after the receiver had stored them, if any were."""
    if not outcome.duplicates_dropped:
        return ""
    return (
        f"; profiles of a batch {batch}, which the receiver had stored, sent again and answered "
        f"`duplicate`: {outcome.duplicates_dropped}"
    )


def _tries(tries: dict[str, int]) -> str:
    return ", ".join(f"{stage} {n}" for stage, n in tries.items())
