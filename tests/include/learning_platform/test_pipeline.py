"""extract → validate → load against a real PostgreSQL and the API simulator over HTTP."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import ExitStack
from datetime import timedelta

import psycopg
import pytest

from devservices.simulator import generate_records
from devservices.summary import summarize_interval
from include.common.http import TransientSourceError
from include.common.intervals import Interval
from include.learning_platform.api import KEPT_HEAD_BYTES, LearningPlatformAuthError, LearningPlatformClient
from include.learning_platform.extract import UnreadableWindow, extract_interval
from include.learning_platform.load import StagingIncomplete, load_interval
from include.learning_platform.rules import Reason
from include.learning_platform.validate import LandingAltered, NothingLanded, validate_interval
from include.learning_platform.warehouse import lock_day
from tests.include.learning_platform.stages import DAY, HOUR, attempts, quarantine, run_stages


def expected_records(simulator, interval: Interval, window: timedelta = HOUR) -> list[dict]:
    """What the API returns for the interval, window by window, computed without HTTP."""
    return [
        record
        for part in interval.windows(window)
        for record in generate_records(simulator.config, part.start, part.end)
    ]


def test_every_fetched_record_is_loaded_or_quarantined_exactly_once(simulator, api_client, warehouse) -> None:
    result = run_stages(warehouse, api_client)

    fetched = expected_records(simulator, DAY)
    assert result.fetched == len(fetched) > 1000
    assert result.loaded + result.quarantined == result.fetched
    assert result.quarantined > 0, "the default simulator mix includes defective records"
    assert len(attempts(warehouse)) == result.loaded
    assert len(quarantine(warehouse)) == result.quarantined
    summary = summarize_interval(warehouse, DAY)
    assert (summary.fetched, summary.loaded, summary.quarantined) == (
        result.fetched,
        result.loaded,
        result.quarantined,
    )


def test_rerunning_a_day_leaves_identical_rows(simulator, api_client, warehouse) -> None:
    first = run_stages(warehouse, api_client, dag_run_id="first")
    rows, rejected = attempts(warehouse), quarantine(warehouse)

    second = run_stages(warehouse, api_client, dag_run_id="second")

    assert second == first
    assert attempts(warehouse) == rows
    assert quarantine(warehouse) == rejected
    assert warehouse.execute("SELECT DISTINCT dag_run_id FROM learning_platform.attempts").fetchall() == [
        ("second",)
    ]


def test_other_days_are_left_alone(simulator, api_client, warehouse) -> None:
    next_day = Interval(DAY.end, DAY.end + timedelta(days=1))
    run_stages(warehouse, api_client, DAY)
    run_stages(warehouse, api_client, next_day)
    before = attempts(warehouse)

    run_stages(warehouse, api_client, DAY)

    assert attempts(warehouse) == before
    days = warehouse.execute(
        "SELECT (created_at AT TIME ZONE 'UTC')::date, count(*) FROM learning_platform.attempts "
        "GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert [d for d, _ in days] == [DAY.day, next_day.day]


def test_a_null_user_id_is_quarantined_with_its_raw_record(simulator, api_client, warehouse) -> None:
    simulator.configure(defects={"user_id_null": 0.1})
    interval = Interval(DAY.start, DAY.start + HOUR)

    run_stages(warehouse, api_client, interval)

    nulls = [r for r in expected_records(simulator, interval) if r.get("lti_user_id") is None]
    rejected = quarantine(warehouse)
    assert len(rejected) == len(nulls) > 0
    assert all(reasons == [Reason.USER_ID_MISSING] for _, reasons, _, _ in rejected)
    assert all('"lti_user_id":null' in record for record, _, _, _ in rejected)


def test_records_outside_the_window_are_counted_not_loaded(simulator, api_client, warehouse) -> None:
    simulator.configure(defects={"outside_window": 0.05})
    interval = Interval(DAY.start, DAY.start + 3 * HOUR)

    result = run_stages(warehouse, api_client, interval)

    outside = [
        r
        for part in interval.windows(HOUR)
        for r in generate_records(simulator.config, part.start, part.end)
        if not part.start.strftime("%F %T") <= r["created_at"] < part.end.strftime("%F %T")
    ]
    reasons = summarize_interval(warehouse, interval).reasons
    assert reasons.get(Reason.CREATED_AT_OUTSIDE_WINDOW) == len(outside) > 0
    lo, hi = warehouse.execute(
        "SELECT min(created_at), max(created_at) FROM learning_platform.attempts"
    ).fetchone()
    assert interval.start <= lo
    assert hi < interval.end
    assert result.loaded + result.quarantined == result.fetched


def test_window_size_does_not_change_the_result(simulator, api_client, warehouse) -> None:
    interval = Interval(DAY.start, DAY.start + 4 * HOUR)
    run_stages(warehouse, api_client, interval, window=HOUR)
    hourly = sorted((row[:8] for row in attempts(warehouse)), key=repr)

    run_stages(warehouse, api_client, interval, window=timedelta(minutes=25))

    # Lineage (window, position) differs with the window size; the attempts themselves do not.
    assert sorted((row[:8] for row in attempts(warehouse)), key=repr) == hourly


def test_wrong_credentials_fail_at_once_and_change_nothing(simulator, api_client, warehouse) -> None:
    run_stages(warehouse, api_client)
    before = attempts(warehouse)
    requests_before = simulator.stats()["requests"]["total"]

    with (
        LearningPlatformClient(simulator.base_url, "test-client", "wrong-key") as bad_client,
        pytest.raises(LearningPlatformAuthError, match="learning_platform_api") as error,
    ):
        extract_interval(warehouse, bad_client, DAY, window=HOUR, dag_run_id="bad")

    assert "wrong-key" not in str(error.value)
    assert simulator.stats()["requests"]["total"] == requests_before + 1, "no retry storm"
    validate_interval(warehouse, DAY)
    load_interval(warehouse, DAY, dag_run_id="after")
    assert attempts(warehouse) == before


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "error", "status": 503, "times": 2},
        {"kind": "error", "status": 500, "times": 1},
        {"kind": "rate_limit", "retry_after": 1, "times": 1},
        {"kind": "cut_body", "times": 2},
        {"kind": "malformed_json", "times": 1},
    ],
    ids=lambda f: f"{f['kind']}-{f.get('status', '')}",
)
def test_transient_faults_are_retried_without_loss_or_duplicates(
    simulator, api_client, warehouse, fault
) -> None:
    interval = Interval(DAY.start, DAY.start + 3 * HOUR)
    run_stages(warehouse, api_client, interval)
    clean_rows, clean_rejected = attempts(warehouse), quarantine(warehouse)
    simulator.set_faults([fault])

    run_stages(warehouse, api_client, interval)

    assert attempts(warehouse) == clean_rows
    assert quarantine(warehouse) == clean_rejected


def test_a_fault_that_outlasts_the_retries_fails_the_extract_and_keeps_the_landing(
    simulator, api_client, warehouse
) -> None:
    interval = Interval(DAY.start, DAY.start + 2 * HOUR)
    run_stages(warehouse, api_client, interval)
    landed = warehouse.execute("SELECT count(*) FROM learning_platform.raw_attempts").fetchone()
    simulator.set_faults([{"kind": "error", "status": 503, "times": None}])

    with pytest.raises(TransientSourceError, match="503") as error:
        extract_interval(warehouse, api_client, interval, window=HOUR, dag_run_id="doomed")

    assert "test-key" not in str(error.value)
    assert warehouse.execute("SELECT count(*) FROM learning_platform.raw_attempts").fetchone() == landed


def test_a_window_malformed_on_every_retry_fails_naming_it_and_keeps_its_answer(
    simulator, api_client, warehouse
) -> None:
    interval = Interval(DAY.start, DAY.start + 2 * HOUR)
    simulator.set_faults([{"kind": "malformed_json", "times": None}])

    with pytest.raises(UnreadableWindow) as error:
        extract_interval(warehouse, api_client, interval, window=HOUR, dag_run_id="doomed")

    first = Interval(DAY.start, DAY.start + HOUR)
    assert f"window {first}" in str(error.value)
    assert "learning_platform.malformed_answers" in str(error.value)
    [(start, end, run, size, head, broken_at, at_break)] = warehouse.execute(
        "SELECT window_start, window_end, dag_run_id, body_bytes, body_head, broken_at, body_at_break "
        "FROM learning_platform.malformed_answers"
    ).fetchall()
    assert (start, end, run) == (first.start, first.end, "doomed")
    # The simulator's malformed answer is a real one cut in half: small enough to be kept whole.
    assert 0 < size == len(head) <= KEPT_HEAD_BYTES
    body = head.decode()
    assert body.startswith("[{")
    assert not body.rstrip().endswith("]")
    assert 0 < broken_at < len(body)
    assert at_break == body[broken_at:]
    assert warehouse.execute("SELECT count(*) FROM learning_platform.raw_attempts").fetchone() == (0,)


def test_the_malformed_answer_kept_is_the_windows_latest(simulator, api_client, warehouse) -> None:
    interval = Interval(DAY.start, DAY.start + HOUR)
    simulator.set_faults([{"kind": "malformed_json", "times": None}])
    for run in ("first", "second"):
        with pytest.raises(UnreadableWindow):
            extract_interval(warehouse, api_client, interval, window=HOUR, dag_run_id=run)

    kept = warehouse.execute("SELECT dag_run_id FROM learning_platform.malformed_answers").fetchall()
    assert kept == [("second",)]


def test_a_read_timeout_is_retried(simulator, warehouse) -> None:
    simulator.set_faults([{"kind": "stall", "seconds": 2, "times": 1}])
    interval = Interval(DAY.start, DAY.start + HOUR)
    with LearningPlatformClient(
        simulator.base_url, "test-client", "test-key-Secret-42", timeout=(2.0, 0.5)
    ) as client:
        result = run_stages(warehouse, client, interval)
    assert result.fetched == len(expected_records(simulator, interval))


def test_load_refuses_a_landing_that_was_not_validated(simulator, api_client, warehouse) -> None:
    interval = Interval(DAY.start, DAY.start + HOUR)
    run_stages(warehouse, api_client, interval)
    simulator.configure(records_per_day=30_000)
    extract_interval(warehouse, api_client, interval, window=HOUR, dag_run_id="new")

    with pytest.raises(StagingIncomplete, match="run the validate task"):
        load_interval(warehouse, interval, dag_run_id="new")


def test_load_refuses_a_new_landing_of_as_many_records_until_it_is_validated(
    simulator, api_client, warehouse
) -> None:
    """The day's counts cannot tell a stale verdict from a current one: the ledgers can."""
    interval = Interval(DAY.start, DAY.start + HOUR)
    published = run_stages(warehouse, api_client, interval)
    before = attempts(warehouse)
    simulator.configure(seed=published.fetched + 1)  # other records, as many of them
    relanded = extract_interval(warehouse, api_client, interval, window=HOUR, dag_run_id="new")
    assert relanded.fetched == published.fetched

    with pytest.raises(StagingIncomplete, match="run the validate task"):
        load_interval(warehouse, interval, dag_run_id="new")

    validate_interval(warehouse, interval)
    load_interval(warehouse, interval, dag_run_id="new")
    assert attempts(warehouse) != before
    runs = warehouse.execute("SELECT DISTINCT dag_run_id FROM learning_platform.attempts").fetchall()
    assert runs == [("new",)]


def test_validate_refuses_an_interval_nothing_has_landed(warehouse) -> None:
    with pytest.raises(NothingLanded, match="clear this run from `extract`"):
        validate_interval(warehouse, Interval(DAY.start, DAY.start + HOUR))


def test_validate_refuses_a_landing_changed_since_extract_recorded_it(api_client, warehouse) -> None:
    interval = Interval(DAY.start, DAY.start + HOUR)
    extract_interval(warehouse, api_client, interval, window=HOUR, dag_run_id="run")
    warehouse.execute("DELETE FROM learning_platform.raw_attempts WHERE position = 0")
    warehouse.commit()

    with pytest.raises(LandingAltered, match="clear this run from `extract` to land the day again"):
        validate_interval(warehouse, interval)


def test_a_load_that_fails_midway_leaves_the_previous_day(simulator, api_client, warehouse) -> None:
    interval = Interval(DAY.start, DAY.start + HOUR)
    run_stages(warehouse, api_client, interval)
    before, before_rejected = attempts(warehouse), quarantine(warehouse)
    # A staged row the warehouse refuses: the INSERT fails after the DELETE has run.
    warehouse.execute(
        "UPDATE learning_platform.staged_attempts SET user_id = 'short' "
        "WHERE position = (SELECT max(position) FROM learning_platform.staged_attempts)"
    )
    warehouse.commit()

    with pytest.raises(psycopg.errors.CheckViolation):
        load_interval(warehouse, interval, dag_run_id="broken")

    assert attempts(warehouse) == before
    assert quarantine(warehouse) == before_rejected


def test_a_load_killed_midway_leaves_the_previous_day(
    simulator, api_client, warehouse, warehouse_conninfo
) -> None:
    interval = Interval(DAY.start, DAY.start + HOUR)
    run_stages(warehouse, api_client, interval)
    before = attempts(warehouse)
    warehouse.commit()

    with psycopg.connect(warehouse_conninfo) as blocker, psycopg.connect(warehouse_conninfo) as victim:
        # Hold the ledger so the load stops after replacing the attempts, then kill its backend.
        blocker.execute("LOCK TABLE learning_platform.load_batches IN EXCLUSIVE MODE")
        victim_pid = victim.info.backend_pid
        outcome: list[BaseException] = []

        def load() -> None:
            try:
                load_interval(victim, interval, dag_run_id="killed")
            except BaseException as error:
                outcome.append(error)

        thread = threading.Thread(target=load)
        thread.start()
        _wait_until_waiting_on_lock(blocker, victim_pid)
        blocker.execute("SELECT pg_terminate_backend(%s)", (victim_pid,))
        blocker.rollback()
        thread.join(timeout=30)

    assert outcome
    assert isinstance(outcome[0], psycopg.OperationalError)
    assert attempts(warehouse) == before


def _wait_until_waiting_on_lock(conn: psycopg.Connection, pid: int) -> None:
    for _ in range(600):
        row = conn.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
        if row and row[0] == "Lock":
            return
        threading.Event().wait(0.05)
    raise AssertionError("the load never reached the ledger")


def test_concurrent_runs_of_one_day_take_turns_and_do_not_double_it(
    simulator, warehouse, warehouse_conninfo, api_client
) -> None:
    """Three runs of one day reach each stage at the same moment; the day's lock makes them take turns.

    Which run goes first is up to PostgreSQL's lock queue, so the order of the stages is made
    explicit: the three extracts, then the three validations, then the three loads. Before each
    stage another session holds the day's lock until all three runs are queued on it, so the
    test proves that they contend, and that the lock alone keeps the day from doubling.
    """
    interval = Interval(DAY.start, DAY.start + 2 * HOUR)
    run_stages(warehouse, api_client, interval)
    expected = attempts(warehouse)
    warehouse.commit()
    names = [f"run{i}" for i in range(3)]

    with ExitStack() as stack:
        conns = {name: stack.enter_context(psycopg.connect(warehouse_conninfo)) for name in names}
        clients = {
            name: stack.enter_context(
                LearningPlatformClient(simulator.base_url, "test-client", "test-key-Secret-42")
            )
            for name in names
        }
        stages = {
            "extract": lambda name: extract_interval(
                conns[name], clients[name], interval, window=HOUR, dag_run_id=name
            ),
            "validate": lambda name: validate_interval(conns[name], interval),
            "load": lambda name: load_interval(conns[name], interval, dag_run_id=name),
        }
        for stage, work in stages.items():
            errors = _at_once_behind_the_days_lock(warehouse_conninfo, interval, conns, work)
            assert errors == [], f"{stage}: {errors}"

    assert attempts(warehouse) == expected
    loaded_by = warehouse.execute("SELECT DISTINCT dag_run_id FROM learning_platform.attempts").fetchall()
    assert len(loaded_by) == 1
    assert loaded_by[0][0] in names


def _at_once_behind_the_days_lock(
    conninfo: str,
    interval: Interval,
    conns: dict[str, psycopg.Connection],
    work: Callable[[str], object],
) -> list[BaseException]:
    """``work(name)`` for every run in a thread of its own, all queued on the day's lock before
    any may take it; the errors they raised."""
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            work(name)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(name,)) for name in conns]
    with psycopg.connect(conninfo) as holder, holder.transaction(), holder.cursor() as cursor:
        lock_day(cursor, interval)
        for thread in threads:
            thread.start()
        _wait_until_all_wait_for_a_lock(holder, [conn.info.backend_pid for conn in conns.values()])
    # The holder's transaction has ended: the runs take the lock one after another.
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a run is still waiting"
    return errors


def _wait_until_all_wait_for_a_lock(conn: psycopg.Connection, pids: list[int]) -> None:
    """Return once every backend in ``pids`` is queued on an advisory lock (30 s at most)."""
    waiting = 0
    for _ in range(600):
        waiting = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND pid = ANY(%s)",
            (pids,),
        ).fetchone()[0]
        if waiting == len(pids):
            return
        threading.Event().wait(0.05)
    raise AssertionError(f"only {waiting} of {len(pids)} runs reached the day's lock")
