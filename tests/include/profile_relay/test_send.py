"""The send stage against real PostgreSQL and the real receiver: each queued profile delivered once."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from devservices.profile_receiver import ProfileReceiver
from include.profile_relay.reconnect import Backoff
from include.profile_relay.send import (
    ReceiverClient,
    ReceiverRefused,
    ReceiverUnavailable,
    SendFailed,
    SendingStalled,
    SendResult,
    run_sender,
)
from include.profile_relay.store import RunNotRegistered
from tests.conftest import wait_for
from tests.include.profile_relay.conftest import APPLICATION

RUN = "manual__2026-12-06T10:00:00+00:00"
# Fast enough for tests, the same doubling as in production.
QUICK = Backoff(initial=0.01, maximum=0.05)
# Longer than any test runs: a thread that never ends fails its join instead of hanging.
JOIN_TIMEOUT_S = 120

sender_log = logging.getLogger("tests.profile_relay.send")


@pytest.fixture
def db(relay_conninfo: str) -> Iterator[psycopg.Connection]:
    """The test's own connection (autocommit), to arrange rows and read the outcome."""
    with psycopg.connect(relay_conninfo, autocommit=True) as conn:
        yield conn


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[ProfileReceiver]:
    with ProfileReceiver(tmp_path / "receiver.sqlite") as receiver:
        yield receiver


@pytest.fixture
def client(receiver: ProfileReceiver) -> Iterator[ReceiverClient]:
    with ReceiverClient(receiver.url, timeout=(3.0, 1.0)) as client:
        yield client


def register_run(db: psycopg.Connection, *, count: int, processed: bool, run_id: str = RUN) -> None:
    db.execute(
        "INSERT INTO profile_relay.runs (run_id, dag_id, count, seed, locale, reference_date, age_min,"
        " age_max, interval_seconds, generated_at)"
        " VALUES (%s, 'user_profiles_relay', %s, 42, 'ru_RU', %s, 30, 40, 0.5, now())",
        (run_id, count, date(2026, 12, 6)),
    )
    if processed:
        mark_processed(db, run_id)


def mark_processed(db: psycopg.Connection, run_id: str = RUN) -> None:
    db.execute("UPDATE profile_relay.runs SET processed_at = clock_timestamp() WHERE run_id = %s", (run_id,))


def queue(db: psycopg.Connection, seqs: range, *, run_id: str = RUN) -> None:
    """Profiles ``seqs`` as process leaves them: judged in range, and waiting in the outbox."""
    for seq in seqs:
        profile = {"name": f"Шестаков Ростислав {seq}", "sex": "FM"[seq % 2], "job": "Моторист", "seq": seq}
        db.execute(
            "INSERT INTO profile_relay.profiles (run_id, seq, ticked_at, birthdate, profile, age, in_range,"
            " judged_at) VALUES (%s, %s, now(), '1993-01-01', %s, 33, true, now())",
            (run_id, seq, json.dumps(profile, ensure_ascii=False)),
        )
        db.execute("INSERT INTO profile_relay.outbox (run_id, seq) VALUES (%s, %s)", (run_id, seq))


def keys(seqs: range, run_id: str = RUN) -> list[str]:
    return [f"{run_id}/{seq}" for seq in seqs]


def send(
    connect: Callable[[], psycopg.Connection],
    client: ReceiverClient,
    *,
    batch_size: int = 50,
    outage_limit: timedelta = timedelta(minutes=10),
) -> SendResult:
    return run_sender(
        connect,
        client,
        run_id=RUN,
        batch_size=batch_size,
        locale="ru_RU",
        poll_seconds=0.01,
        outage_limit=outage_limit,
        log=sender_log,
        backoff=QUICK,
    )


def deliveries(db: psycopg.Connection) -> list[tuple[int, str, str, int]]:
    return db.execute(
        "SELECT seq, idempotency_key, outcome, attempts FROM profile_relay.deliveries ORDER BY seq"
    ).fetchall()


def outbox(db: psycopg.Connection) -> list[tuple[int, int]]:
    return db.execute("SELECT seq, attempts FROM profile_relay.outbox ORDER BY seq").fetchall()


def failures(db: psycopg.Connection) -> list[tuple[str, int]]:
    return db.execute("SELECT kind, profiles FROM profile_relay.send_failures ORDER BY failed_at").fetchall()


def run_times(db: psycopg.Connection) -> tuple:
    return db.execute(
        "SELECT processed_at, sent_at FROM profile_relay.runs WHERE run_id = %s", (RUN,)
    ).fetchone()


class SenderThread(threading.Thread):
    """A sender running beside the test, keeping its result or its error."""

    def __init__(self, body: Callable[[], SendResult]) -> None:
        super().__init__(daemon=True)
        self._body = body
        self.result: SendResult | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self._body()
        except BaseException as error:
            self.error = error

    def outcome(self) -> SendResult:
        self.join(JOIN_TIMEOUT_S)
        assert not self.is_alive(), "the sender did not finish"
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


def test_every_queued_profile_is_delivered_once_and_leaves_the_outbox(
    db: psycopg.Connection,
    connect: Callable[[], psycopg.Connection],
    receiver: ProfileReceiver,
    client: ReceiverClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    register_run(db, count=7, processed=True)
    queue(db, range(1, 8))

    with caplog.at_level(logging.INFO, logger=sender_log.name):
        result = send(connect, client, batch_size=3)

    assert receiver.accepted_keys() == keys(range(1, 8))
    assert receiver.accepted()[f"{RUN}/3"]["name"] == "Шестаков Ростислав 3"
    assert outbox(db) == []
    assert deliveries(db) == [(seq, f"{RUN}/{seq}", "accepted", 1) for seq in range(1, 8)]
    assert (result.delivered, result.accepted, result.batches, result.failed_sends) == (7, 7, 3, 0)
    processed_at, sent_at = run_times(db)
    assert sent_at == result.sent_at
    assert sent_at > processed_at
    lines = [record.getMessage() for record in caplog.records if "Шестаков" in record.getMessage()]
    assert len(lines) == 7
    assert "Шестаков Ростислав 1" in lines[0]


def test_a_run_with_nothing_in_range_finishes_with_nothing_sent(
    db: psycopg.Connection, connect: Callable[[], psycopg.Connection], client: ReceiverClient
) -> None:
    register_run(db, count=3, processed=True)

    result = send(connect, client)

    assert (result.delivered, result.batches) == (0, 0)
    assert run_times(db)[1] == result.sent_at


def test_receiver_500s_leave_the_batch_queued_until_it_is_delivered_once(
    db: psycopg.Connection,
    connect: Callable[[], psycopg.Connection],
    receiver: ProfileReceiver,
    client: ReceiverClient,
) -> None:
    register_run(db, count=4, processed=True)
    queue(db, range(1, 5))
    receiver.set_fault("http_500", times=3)

    result = send(connect, client)

    assert receiver.accepted_keys() == keys(range(1, 5))
    assert receiver.duplicate_posts() == {}
    assert deliveries(db) == [(seq, f"{RUN}/{seq}", "accepted", 4) for seq in range(1, 5)]
    assert failures(db) == [("http_500", 4)] * 3
    assert (result.delivered, result.failed_sends) == (4, 3)
    assert outbox(db) == []


def test_an_answer_lost_after_the_receiver_stored_the_batch_is_resent_and_recorded_as_duplicate(
    db: psycopg.Connection,
    connect: Callable[[], psycopg.Connection],
    receiver: ProfileReceiver,
    client: ReceiverClient,
) -> None:
    register_run(db, count=3, processed=True)
    queue(db, range(1, 4))
    receiver.set_fault("drop_after_accept", times=1)

    result = send(connect, client)

    assert receiver.accepted_keys() == keys(range(1, 4))
    assert receiver.duplicate_posts() == dict.fromkeys(keys(range(1, 4)), 1)
    assert deliveries(db) == [(seq, f"{RUN}/{seq}", "duplicate", 2) for seq in range(1, 4)]
    assert failures(db) == [("reset", 3)]
    assert (result.accepted, result.duplicates) == (0, 3)


def test_two_senders_at_once_never_send_a_profile_twice(
    db: psycopg.Connection,
    connect: Callable[[], psycopg.Connection],
    receiver: ProfileReceiver,
) -> None:
    register_run(db, count=200, processed=True)
    queue(db, range(1, 201))
    clients = [ReceiverClient(receiver.url), ReceiverClient(receiver.url)]
    senders = [SenderThread(lambda client=client: send(connect, client, batch_size=5)) for client in clients]

    for sender in senders:
        sender.start()
    results = [sender.outcome() for sender in senders]

    assert sorted(receiver.accepted_keys()) == sorted(keys(range(1, 201)))
    assert receiver.duplicate_posts() == {}
    assert [outcome for _, _, outcome, _ in deliveries(db)] == ["accepted"] * 200
    assert sum(result.delivered for result in results) == 200
    assert results[0].sent_at == results[1].sent_at == run_times(db)[1]


def test_rows_another_sender_holds_are_skipped_and_the_run_waits_for_them(
    db: psycopg.Connection,
    connect: Callable[[], psycopg.Connection],
    relay_conninfo: str,
    receiver: ProfileReceiver,
    client: ReceiverClient,
) -> None:
    register_run(db, count=6, processed=True)
    queue(db, range(1, 7))
    with psycopg.connect(relay_conninfo) as other_sender:
        # Another sender's claim in flight: rows 1-2 locked until its transaction ends.
        other_sender.execute("SELECT seq FROM profile_relay.outbox WHERE seq <= 2 FOR UPDATE")
        sender = SenderThread(lambda: send(connect, client, batch_size=2))
        sender.start()
        wait_for(
            lambda: len(receiver.accepted_keys()) == 4,
            "the unlocked rows are delivered",
            timeout_s=JOIN_TIMEOUT_S,
        )

        assert receiver.accepted_keys() == keys(range(3, 7))
        assert sender.is_alive()
        assert run_times(db)[1] is None
        other_sender.rollback()  # its send failed: the rows are free again

    sender.outcome()
    assert sorted(receiver.accepted_keys()) == sorted(keys(range(1, 7)))
    assert receiver.duplicate_posts() == {}


def test_the_sender_finishes_only_after_process_has_finished(
    db: psycopg.Connection,
    connect: Callable[[], psycopg.Connection],
    receiver: ProfileReceiver,
    client: ReceiverClient,
) -> None:
    register_run(db, count=5, processed=False)
    queue(db, range(1, 4))
    sender = SenderThread(lambda: send(connect, client))
    sender.start()
    wait_for(
        lambda: len(receiver.accepted_keys()) == 3,
        "the first profiles are delivered",
        timeout_s=JOIN_TIMEOUT_S,
    )

    assert sender.is_alive()
    queue(db, range(4, 6))  # process queues more, then ends
    mark_processed(db)
    result = sender.outcome()

    assert receiver.accepted_keys() == keys(range(1, 6))
    processed_at, sent_at = run_times(db)
    assert sent_at == result.sent_at
    assert sent_at > processed_at


def test_a_lost_database_connection_is_reconnected_and_nothing_is_sent_twice(
    db: psycopg.Connection,
    connect: Callable[[], psycopg.Connection],
    receiver: ProfileReceiver,
    client: ReceiverClient,
) -> None:
    register_run(db, count=4, processed=False)
    queue(db, range(1, 3))
    sender = SenderThread(lambda: send(connect, client))
    sender.start()
    # Recorded, not only received: the connection is lost between batches. (Lost in a batch's
    # COMMIT, the batch goes again and comes back "duplicate", as a dropped answer does.)
    wait_for(lambda: len(deliveries(db)) == 2, "the first deliveries are recorded", timeout_s=JOIN_TIMEOUT_S)

    terminated = db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (APPLICATION,)
    ).fetchall()
    assert terminated == [(True,)]
    queue(db, range(3, 5))
    mark_processed(db)
    sender.outcome()

    assert receiver.accepted_keys() == keys(range(1, 5))
    assert receiver.duplicate_posts() == {}
    assert [outcome for _, _, outcome, _ in deliveries(db)] == ["accepted"] * 4


class LosesTheStoreAfterItsFirstAnswer(ReceiverClient):
    """The real client; once its first batch is acknowledged, PostgreSQL drops the sender's
    connection before the sender can commit the deliveries (a restart at the worst moment)."""

    def __init__(self, url: str, db: psycopg.Connection) -> None:
        super().__init__(url)
        self._db = db
        self.cut = False

    def post_batch(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
        outcomes = super().post_batch(items)
        if not self.cut:
            self.cut = True
            self._db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                (APPLICATION,),
            )
        return outcomes


def test_a_connection_lost_before_the_deliveries_commit_resends_the_batch_as_duplicates(
    db: psycopg.Connection, connect: Callable[[], psycopg.Connection], receiver: ProfileReceiver
) -> None:
    register_run(db, count=3, processed=True)
    queue(db, range(1, 4))

    with LosesTheStoreAfterItsFirstAnswer(receiver.url, db) as client:
        result = send(connect, client)

    assert client.cut
    assert receiver.accepted_keys() == keys(range(1, 4))
    assert receiver.duplicate_posts() == dict.fromkeys(keys(range(1, 4)), 1)
    # The lost transaction took its claim with it: the store knows of one send, the duplicate.
    assert deliveries(db) == [(seq, f"{RUN}/{seq}", "duplicate", 1) for seq in range(1, 4)]
    assert (result.delivered, result.duplicates) == (3, 3)
    assert outbox(db) == []


def test_a_4xx_fails_the_task_with_the_receivers_message_and_leaves_the_rows_queued(
    db: psycopg.Connection,
    connect: Callable[[], psycopg.Connection],
    receiver: ProfileReceiver,
    client: ReceiverClient,
) -> None:
    # A run id so long that its keys break the receiver's contract (at most 500 characters).
    long_run = "manual__" + "x" * 600
    register_run(db, count=1, processed=True, run_id=long_run)
    queue(db, range(1, 2), run_id=long_run)

    with pytest.raises(ReceiverRefused, match=r"refused a batch with 400: profiles\[0\]: 'key' must be"):
        run_sender(
            connect, client, run_id=long_run, batch_size=10, locale="ru_RU", poll_seconds=0.01, backoff=QUICK
        )

    assert outbox(db) == [(1, 1)]
    assert [kind for kind, _ in failures(db)] == ["http_400"]
    assert receiver.accepted_keys() == []


def test_a_wrong_token_is_refused_with_what_to_fix_and_never_shown(
    db: psycopg.Connection, connect: Callable[[], psycopg.Connection], tmp_path: Path
) -> None:
    register_run(db, count=1, processed=True)
    queue(db, range(1, 2))

    with (
        ProfileReceiver(tmp_path / "locked.sqlite", token="the-right-token") as locked,
        ReceiverClient(locked.url, token="wrong-token-123") as client,
        pytest.raises(ReceiverRefused) as refused,
    ):
        send(connect, client)

    assert "refused a batch with 401" in str(refused.value)
    assert "Set the password of the Airflow connection 'profile_receiver'" in str(refused.value)
    assert "wrong-token-123" not in str(refused.value)
    assert "wrong-token-123" not in " ".join(
        detail for (detail,) in db.execute("SELECT detail FROM profile_relay.send_failures")
    )


def test_a_receiver_down_longer_than_the_limit_fails_the_task_with_the_rows_still_queued(
    db: psycopg.Connection,
    connect: Callable[[], psycopg.Connection],
    receiver: ProfileReceiver,
    client: ReceiverClient,
) -> None:
    register_run(db, count=2, processed=True)
    queue(db, range(1, 3))
    receiver.set_fault("down", seconds=600)

    with pytest.raises(ReceiverUnavailable, match=r"every send to the receiver failed .* refused"):
        send(connect, client, outage_limit=timedelta(seconds=0.2))

    assert outbox(db)[0][1] >= 2
    assert {kind for kind, _ in failures(db)} == {"refused"}
    assert run_times(db)[1] is None


def test_a_sender_with_nothing_queued_while_nothing_happens_upstream_fails_naming_the_stages(
    db: psycopg.Connection, connect: Callable[[], psycopg.Connection], client: ReceiverClient
) -> None:
    # Generated, never processed: process failed for good, and nothing will ever be queued.
    register_run(db, count=3, processed=False)
    db.execute("UPDATE profile_relay.runs SET generated_at = clock_timestamp() - interval '1 hour'")
    db.execute("UPDATE profile_relay.runs SET registered_at = generated_at - interval '1 minute'")

    with pytest.raises(SendingStalled, match="generate and process tasks"):
        run_sender(
            connect,
            client,
            run_id=RUN,
            batch_size=50,
            locale="ru_RU",
            poll_seconds=0.01,
            idle_limit=timedelta(minutes=30),
        )
    assert run_times(db)[1] is None


def test_a_sender_waits_while_profiles_are_still_being_stored(
    db: psycopg.Connection, connect: Callable[[], psycopg.Connection], client: ReceiverClient
) -> None:
    # Registered an hour ago, but a profile was stored just now: upstream is alive, the sender waits.
    register_run(db, count=3, processed=False)
    db.execute(
        "UPDATE profile_relay.runs"
        " SET registered_at = clock_timestamp() - interval '1 hour', generated_at = NULL"
    )
    queue(db, range(1, 2))
    result: list[SendResult] = []
    sender = threading.Thread(
        target=lambda: result.append(
            run_sender(
                connect,
                client,
                run_id=RUN,
                batch_size=50,
                locale="ru_RU",
                poll_seconds=0.01,
                idle_limit=timedelta(minutes=30),
            )
        )
    )
    sender.start()
    wait_for(lambda: len(deliveries(db)) == 1, "the queued profile delivered", timeout_s=JOIN_TIMEOUT_S)
    db.execute("UPDATE profile_relay.runs SET generated_at = clock_timestamp()")
    mark_processed(db)
    sender.join(JOIN_TIMEOUT_S)

    assert [sent.delivered for sent in result] == [1]


def test_a_run_that_was_never_registered_is_an_error_naming_prepare(
    connect: Callable[[], psycopg.Connection], client: ReceiverClient
) -> None:
    with pytest.raises(RunNotRegistered, match="prepare task must succeed first"):
        send(connect, client)


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ({"mode": "http_500"}, "http_500"),
        ({"mode": "timeout"}, "timeout"),
        ({"mode": "drop_after_accept"}, "reset"),
        ({"mode": "down", "seconds": 600}, "refused"),
    ],
)
def test_the_client_names_each_kind_of_failure(
    receiver: ProfileReceiver, client: ReceiverClient, fault: dict, kind: str
) -> None:
    receiver.set_fault(**fault)

    with pytest.raises(SendFailed) as failed:
        client.post_batch([("run/1", {"name": "Иванов"})])

    assert failed.value.kind == kind
    assert receiver.url.removeprefix("http://") in failed.value.detail


def test_the_client_is_built_from_the_airflow_http_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ProfileReceiver(tmp_path / "receiver.sqlite", token="conn-token") as receiver:
        connection = {
            "conn_type": "http",
            "host": receiver.host,
            "port": receiver.port,
            "schema": "http",
            "password": "conn-token",
        }
        monkeypatch.setenv("AIRFLOW_CONN_PROFILE_RECEIVER", json.dumps(connection))

        with ReceiverClient.from_airflow() as client:
            outcomes = client.post_batch([("run/1", {"name": "Иванов"}), ("run/1", {"name": "Иванов"})])

        assert outcomes == ["accepted", "duplicate"]
        assert client.address == receiver.url


def test_a_connection_that_points_elsewhere_is_refused_with_what_to_check(receiver: ProfileReceiver) -> None:
    with (
        ReceiverClient(f"{receiver.url}/api/v2", conn_id="my_receiver") as client,
        pytest.raises(
            ReceiverRefused, match="refused a batch with 404: no such path: /api/v2/profiles"
        ) as refused,
    ):
        client.post_batch([("run/1", {"name": "Иванов"})])

    assert refused.value.kind == "http_404"
    assert "Check that the Airflow connection 'my_receiver' points at the profile receiver" in str(
        refused.value
    )
    assert receiver.accepted_keys() == []
