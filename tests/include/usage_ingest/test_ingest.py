"""process_range against a real PostgreSQL and real files: every line once, resumed, or refused."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from devservices.usage_writer import Manifest, write_files
from include.usage_ingest import store
from include.usage_ingest.finished import find_finished
from include.usage_ingest.ingest import FileChanged, RangeResult, process_range
from include.usage_ingest.lines import read_batches
from include.usage_ingest.model import BatchLimits, FilePlan
from include.usage_ingest.planning import plan_file

RUN = "scheduled__2026-12-06T10:00:00+00:00"
LEASE = timedelta(minutes=30)
ARRIVAL = datetime(2026, 12, 6, 9, 41, 7, tzinfo=UTC)
# Small on purpose: a 300 kB file becomes several ranges of many batches each.
RANGE_BYTES = 100_000
LIMITS = BatchLimits(max_bytes=16_384, max_consumers=60)


@pytest.fixture
def drop(tmp_path: Path) -> tuple[Path, Manifest]:
    incoming = tmp_path / "incoming"
    manifest = write_files(
        incoming, files=2, size_bytes=300_000, consumers=400, bad_share=0.01, seed=7, mtime=ARRIVAL
    )
    return incoming, manifest


def claim_all(conn: psycopg.Connection, incoming: Path) -> list[FilePlan]:
    plans = []
    for file in find_finished(incoming, "*.usage", settle_seconds=30, now=ARRIVAL + timedelta(minutes=5)):
        plan = plan_file(file, range_bytes=RANGE_BYTES)
        assert store.claim_file(conn, plan, run_id=RUN, lease=LEASE).outcome is store.ClaimOutcome.CLAIMED
        plans.append(plan)
    return plans


def process(conn: psycopg.Connection, file_id: int, range_no: int) -> RangeResult:
    return process_range(conn, file_id, range_no, limits=LIMITS, committed_by=RUN, lease=LEASE)


def totals(conn: psycopg.Connection) -> dict[int, int]:
    return dict(conn.execute("SELECT consumer_id, amount FROM usage_ingest.consumer_totals").fetchall())


def quarantined(conn: psycopg.Connection) -> Counter[tuple[str, int, str]]:
    rows = conn.execute(
        "SELECT f.name, q.line_number, q.reason FROM usage_ingest.quarantine AS q"
        " JOIN usage_ingest.files AS f USING (file_id)"
    ).fetchall()
    return Counter(rows)


def test_files_in_several_ranges_and_batches_add_up_to_the_manifest(conn, drop) -> None:
    incoming, manifest = drop
    plans = claim_all(conn, incoming)
    assert all(len(plan.ranges) >= 3 for plan in plans)

    results = [process(conn, key.file_id, key.range_no) for key in store.claimed_ranges(conn, RUN)]

    assert all(result.done and result.stale == 0 for result in results)
    assert sum(result.batches for result in results) > 2 * len(results), "several batches per range"
    assert totals(conn) == manifest.totals()
    assert quarantined(conn) == Counter(
        (entry.name, line, reason.value)
        for entry in manifest.files
        for line, reason in manifest.bad_lines(entry.name)
    )
    for account in store.files_claimed_by(conn, RUN):
        assert account.balanced, account
    assert store.claimed_ranges(conn, RUN) == []


def test_a_range_processed_again_applies_nothing(conn, drop) -> None:
    incoming, manifest = drop
    claim_all(conn, incoming)
    keys = store.claimed_ranges(conn, RUN)
    for key in keys:
        process(conn, key.file_id, key.range_no)

    again = [process(conn, key.file_id, key.range_no) for key in keys]

    assert [result.batches for result in again] == [0] * len(keys)
    assert totals(conn) == manifest.totals()


def test_a_retry_resumes_from_the_last_committed_batch(conn, drop) -> None:
    incoming, manifest = drop
    [plan, *_] = claim_all(conn, incoming)
    file_id = store.claimed_ranges(conn, RUN)[0].file_id
    first = plan.ranges[0]
    # A worker that died after committing two batches of the range.
    for batch in list(
        read_batches(plan.file.path, start=first.start, end=first.end, first_line=1, limits=LIMITS)
    )[:2]:
        assert store.apply_batch(conn, file_id, 0, batch, committed_by="the lost worker", lease=LEASE)

    resumed = process(conn, file_id, 0)

    everything = list(
        read_batches(plan.file.path, start=first.start, end=first.end, first_line=1, limits=LIMITS)
    )
    assert resumed.batches == len(everything) - 2
    for key in store.claimed_ranges(conn, RUN):
        process(conn, key.file_id, key.range_no)
    assert totals(conn) == manifest.totals()


def test_two_processes_on_one_range_apply_each_batch_once(conn, drop, usage_conninfo) -> None:
    incoming, manifest = drop
    claim_all(conn, incoming)
    key = store.claimed_ranges(conn, RUN)[0]
    results: list[RangeResult] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with psycopg.connect(usage_conninfo, application_name="usage-worker") as own:
                results.append(process(own, key.file_id, key.range_no))
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    # Hold the range's row so that both workers read the same checkpoint and prepare the same
    # first batch, then wait for its lock: whichever commits it, the other's is stale.
    with (
        psycopg.connect(usage_conninfo) as blocker,
        psycopg.connect(usage_conninfo, autocommit=True) as admin,
    ):
        blocker.execute(
            "SELECT 1 FROM usage_ingest.ranges WHERE file_id = %s AND range_no = %s FOR UPDATE",
            (key.file_id, key.range_no),
        )
        workers = [threading.Thread(target=worker) for _ in range(2)]
        for thread in workers:
            thread.start()
        wait_for_lock_waiters(admin, 2, workers)
        blocker.rollback()
        for thread in workers:
            thread.join()

    assert errors == []
    assert all(result.done for result in results)
    assert sum(result.stale for result in results) >= 1
    for rest in store.claimed_ranges(conn, RUN):
        process(conn, rest.file_id, rest.range_no)
    assert totals(conn) == manifest.totals()


def test_a_file_changed_after_planning_is_refused_and_nothing_is_applied(conn, drop) -> None:
    incoming, _ = drop
    [plan, *_] = claim_all(conn, incoming)
    file_id = store.claimed_ranges(conn, RUN)[0].file_id
    with open(plan.file.path, "ab") as writer:
        writer.write(b"42 1000\n")

    with pytest.raises(FileChanged, match=f"{plan.file.name} changed after it was planned.*settle_seconds"):
        process(conn, file_id, 0)

    assert totals(conn) == {}
    assert not store.range_state(conn, file_id, 0).done


def wait_for_lock_waiters(admin: psycopg.Connection, count: int, threads: list[threading.Thread]) -> None:
    """Return once ``count`` worker sessions wait for a lock: the order is then fixed, whatever the timing."""
    while all(thread.is_alive() for thread in threads):
        waiting = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'usage-worker'"
            " AND wait_event_type = 'Lock'"
        ).fetchone()[0]
        if waiting >= count:
            return
        threads[0].join(0.01)
    raise AssertionError("a worker finished without waiting for the held range")
