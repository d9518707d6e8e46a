"""The fault table of ``usage_files_ingest``: exactly once, whatever crashes, measured to the unit.

Every test drops files made by the writer (``devservices.usage_writer``: skewed consumers, bad
lines of every reason, odd but good spellings), runs the DAG's steps as its tasks do
(tests/reliability/usage_ingest_harness.py) against a real PostgreSQL, injects one fault, lets
the pipeline recover as Airflow would (a retry is a new worker process; a later run takes over an
expired claim), and compares the store with the writer's manifest: the total of every consumer
and its sum in the files' arrival hour to the unit, every quarantined line by number and reason,
and the lines each file's committed batches cover (none missing, none twice). Each test adds its
row to the ``usage_files_ingest`` section of docs/RELIABILITY.md.

A worker (one try of ``process_range``) runs in a process of its own so that it can be
SIGKILLed. Where a fault must strike inside a batch, the test makes the batch wait there rather
than racing it: it holds a lock the batch needs (a row of ``consumer_totals``, or the range's
row) until PostgreSQL shows the worker waiting, or a proxy between worker and PostgreSQL
(tests/reliability/pg_proxy.py) cuts the connection at one protocol message. The random kill
points of the first row are chosen by batches committed, polled from the store, plus a random
delay: where they land varies, what is asserted does not.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from devservices.postgres import LocalPostgres
from devservices.usage_writer import Manifest, write_files
from include.usage_ingest.model import BatchLimits
from include.usage_ingest.store import migrate_schema
from tests.conftest import wait_for
from tests.reliability.conftest import FaultDatabase, record_harness_row, wait_until_blocked, warehouse_db
from tests.reliability.pg_proxy import CuttingPostgresProxy
from tests.reliability.usage_ingest_harness import (
    DAG_ID,
    LATER,
    IngestRun,
    StoreOutcome,
    arrival,
    commit_first_batches,
    committed_batches,
    lease_expired,
)

pytestmark = pytest.mark.timeout(300)

KIB = 1024
# Batches of 256 KiB: a 4 MB file has about 16, so a fault strikes well inside the file.
SMALL_BATCHES = BatchLimits(max_bytes=256 * KIB, max_consumers=200_000)
FILE = {"size_bytes": 4_000_000, "consumers": 20_000, "bad_share": 0.002}
# The batch a fault strikes in: batches before it are committed, batches after it are not yet.
VICTIM_BATCH = 5
KILLS = 22


@dataclass
class Store(FaultDatabase):
    """The test's store database."""

    def through(self, proxy: CuttingPostgresProxy) -> str:
        """The store's address as a worker behind ``proxy`` reaches it (no TLS: the proxy reads it)."""
        return make_conninfo(self.conninfo, port=proxy.port, sslmode="disable")

    def outcome(self, *manifests: Manifest) -> StoreOutcome:
        return StoreOutcome.measure(self.conninfo, manifests)

    def batches(self, file_id: int) -> int:
        with psycopg.connect(self.conninfo) as conn:
            return committed_batches(conn, file_id)

    def files(self) -> list[tuple[str, str, str]]:
        """(name, state, claimed_by) of every file, by file id."""
        with psycopg.connect(self.conninfo) as conn:
            return conn.execute(
                "SELECT name, state, claimed_by FROM usage_ingest.files ORDER BY file_id"
            ).fetchall()

    def session(self, name: str) -> tuple[str, bool] | None:
        """A worker's session as PostgreSQL shows it: (state, holds a transaction id = wrote)."""
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            row = conn.execute(
                "SELECT state, backend_xid IS NOT NULL FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = %s",
                (name,),
            ).fetchone()
        return None if row is None else (row[0], row[1])

    def wait_session_gone(self, name: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while self.session(name) is not None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the session {name} outlived its worker")
            time.sleep(0.02)


@pytest.fixture
def store(
    airflow_home: Path,
    cluster: LocalPostgres,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Iterator[Store]:
    with warehouse_db(cluster, monkeypatch, request, prefix="usage_") as database:
        with psycopg.connect(cluster.conninfo(database)) as conn:
            migrate_schema(conn)
        yield Store(cluster, database)


@pytest.fixture
def incoming(tmp_path: Path) -> Path:
    return tmp_path / "incoming"


def params(incoming: Path, **more: Any) -> dict[str, Any]:
    return {"incoming": str(incoming), **more}


def record(
    fault_table: list[dict[str, Any]], *, fault: str, injection: str, behaviour: str, outcome: StoreOutcome
) -> None:
    record_harness_row(
        fault_table,
        pipeline=DAG_ID,
        fault=fault,
        injection=injection,
        behaviour=behaviour,
        outcome=outcome,
        quarantined=outcome.quarantined,
    )


def finished(worker: subprocess.Popen[str], timeout_s: float = 120) -> dict[str, Any]:
    """The result of a worker that must succeed."""
    out, err = worker.communicate(timeout=timeout_s)
    assert worker.returncode == 0, err
    return json.loads(out)


def failed(worker: subprocess.Popen[str], timeout_s: float = 120) -> str:
    """The error of a worker that must fail (not be killed): its exception's first line."""
    out, err = worker.communicate(timeout=timeout_s)
    assert worker.returncode == 1, (worker.returncode, out, err)
    # A traceback's frames are indented; the exception's line is not (its message may go on, indented).
    return [line for line in err.splitlines() if line and not line[0].isspace()][-1]


def killed(worker: subprocess.Popen[str]) -> None:
    worker.send_signal(signal.SIGKILL)
    worker.communicate(timeout=30)
    assert worker.returncode == -signal.SIGKILL, "the worker had ended before the kill"


def one_file(incoming: Path, seed: int, **more: Any) -> Manifest:
    return write_files(incoming, files=1, seed=seed, mtime=arrival(9), **{**FILE, **more})


def claim_one(run: IngestRun) -> dict[str, Any]:
    (key,) = run.claim(LATER)
    return key


class HeldTotal:
    """Hold the row of one consumer's total (the busiest: every batch adds to it) FOR UPDATE."""

    def __init__(self, store: Store, manifest: Manifest) -> None:
        totals = manifest.totals()
        self.consumer = max(totals, key=totals.__getitem__)
        self._conn = psycopg.connect(store.conninfo)

    def __enter__(self) -> HeldTotal:
        row = self._conn.execute(
            "SELECT 1 FROM usage_ingest.consumer_totals WHERE consumer_id = %s FOR UPDATE", (self.consumer,)
        ).fetchone()
        assert row is not None, "the busiest consumer has no total yet: no batch was committed"
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._conn.rollback()
            self._conn.close()
        except psycopg.OperationalError:
            pass  # the server went down under us: the lock went with it


def killed_inside_a_batch(store: Store, run: IngestRun, key: dict[str, Any], manifest: Manifest) -> None:
    """A worker SIGKILLed inside batch VICTIM_BATCH's transaction (held there by a total it needs),
    its session gone: what a crashed worker leaves, whatever the machine's speed."""
    commit_first_batches(store.conninfo, run, key, VICTIM_BATCH - 1)
    with HeldTotal(store, manifest):
        worker = run.worker(key, store.conninfo, name="usage-worker")
        wait_until_blocked(store.conninfo, application_name="usage-worker")
        killed(worker)
    store.wait_session_gone("usage-worker")
    assert store.batches(key["file_id"]) == VICTIM_BATCH - 1


def test_a_worker_killed_at_many_random_points_ends_with_the_manifests_totals(
    store: Store, incoming: Path, fault_table
) -> None:
    manifest = write_files(
        incoming, files=1, size_bytes=24_000_000, consumers=50_000, bad_share=0.001, seed=11, mtime=arrival(9)
    )
    run = IngestRun(params(incoming), limits=SMALL_BATCHES)
    key = claim_one(run)
    rng = random.Random(2026)
    landed: dict[str, int] = {"mid-transaction": 0, "between batches": 0, "before connecting": 0}
    for kill in range(KILLS):
        target = store.batches(key["file_id"]) + rng.randint(1, 3)
        name = f"usage-worker-{kill}"
        worker = run.worker(key, store.conninfo, name=name)
        wait_for(
            lambda worker=worker, target=target: (
                store.batches(key["file_id"]) >= target or worker.poll() is not None
            ),
            f"worker {kill} never committed batch {target}",
            timeout_s=120,
            poll_s=0.005,
        )
        time.sleep(rng.uniform(0, 0.03))
        session = store.session(name)
        killed(worker)
        if session is None:
            landed["before connecting"] += 1
        else:
            landed["mid-transaction" if session[1] else "between batches"] += 1
    before_retry = store.batches(key["file_id"])
    result = finished(run.worker(key, store.conninfo, name="usage-worker-last"))
    run.finish()

    assert result["stale"] == 0
    outcome = store.outcome(manifest)
    record(
        fault_table,
        fault=f"worker killed (SIGKILL) at {KILLS} random points of one file",
        injection=f"one 24 MB file in batches of 256 KiB ({before_retry + result['batches']} batches); "
        f"{KILLS} workers in turn, each SIGKILLed once 1-3 more batches were committed (polled from the "
        "store) plus a random 0-30 ms; where they landed, as pg_stat_activity showed a moment before: "
        + ", ".join(f"{where} {n}" for where, n in landed.items() if n),
        behaviour="a killed worker's open transaction was rolled back by PostgreSQL; each next worker "
        "read the range's checkpoint and went on from it; the last finished the range "
        f"({result['batches']} batches) and finish_files balanced the file",
        outcome=outcome,
    )
    assert outcome.exact, outcome


def test_a_batch_committed_whose_reply_was_lost_is_not_applied_again(
    store: Store, incoming: Path, fault_table
) -> None:
    manifest = one_file(incoming, seed=12)
    run = IngestRun(params(incoming), limits=SMALL_BATCHES)
    key = claim_one(run)
    with CuttingPostgresProxy(store.cluster.port) as proxy:
        proxy.cut_after_commit(VICTIM_BATCH)
        error = failed(run.worker(key, store.through(proxy), name="usage-worker"))
        assert proxy.cut.is_set()
        # The store accepted the batch whose COMMIT the worker never heard back from.
        assert store.batches(key["file_id"]) == VICTIM_BATCH
        retry = finished(run.worker(key, store.through(proxy), name="usage-worker-retry"))
    run.finish()

    assert retry["stale"] == 0
    outcome = store.outcome(manifest)
    record(
        fault_table,
        fault="killed after the store accepted a batch, before its reply",
        injection=f"a proxy between worker and PostgreSQL passed on the COMMIT of batch {VICTIM_BATCH}, "
        "threw PostgreSQL's reply away and closed both connections",
        behaviour=f"the worker failed not knowing whether batch {VICTIM_BATCH} was in ({error}); "
        f"the store had it, with its checkpoint; the retry read the checkpoint and went on from batch "
        f"{VICTIM_BATCH + 1} ({retry['batches']} batches, none stale)",
        outcome=outcome,
    )
    assert outcome.exact, outcome


def test_a_worker_killed_inside_a_batchs_transaction_leaves_nothing_of_it(
    store: Store, incoming: Path, fault_table
) -> None:
    manifest = one_file(incoming, seed=13)
    run = IngestRun(params(incoming), limits=SMALL_BATCHES)
    key = claim_one(run)
    commit_first_batches(store.conninfo, run, key, VICTIM_BATCH - 1)
    with HeldTotal(store, manifest) as held:
        worker = run.worker(key, store.conninfo, name="usage-worker")
        wait_until_blocked(store.conninfo, application_name="usage-worker")
        state, wrote = store.session("usage-worker")
        committed = store.batches(key["file_id"])
        killed(worker)
    # PostgreSQL ends the session once the lock is let go and it finds the client gone.
    store.wait_session_gone("usage-worker")
    assert store.batches(key["file_id"]) == committed
    retry = finished(run.worker(key, store.conninfo, name="usage-worker-retry"))
    run.finish()

    assert wrote, "the worker had written nothing in its transaction"
    outcome = store.outcome(manifest)
    record(
        fault_table,
        fault="worker killed inside a batch's transaction",
        injection=f"the test held consumer {held.consumer}'s total row (every batch adds to it) until "
        f"the worker waited for it inside batch {committed + 1}'s transaction ({state}, sums copied and "
        "part of the totals updated), then SIGKILL",
        behaviour=f"the batch was rolled back whole (the checkpoint stayed at {committed} batches); the "
        f"retry redid it from the checkpoint ({retry['batches']} batches)",
        outcome=outcome,
    )
    assert outcome.exact, outcome


def test_postgres_crashed_mid_batch_then_the_retry_is_exact(
    store: Store, incoming: Path, fault_table
) -> None:
    manifest = one_file(incoming, seed=14)
    run = IngestRun(params(incoming), limits=SMALL_BATCHES)
    key = claim_one(run)
    commit_first_batches(store.conninfo, run, key, VICTIM_BATCH - 1)
    with HeldTotal(store, manifest):
        worker = run.worker(key, store.conninfo, name="usage-worker")
        wait_until_blocked(store.conninfo, application_name="usage-worker")
        committed = store.batches(key["file_id"])
        store.cluster.crash()
        error = failed(worker)
    store.cluster.start()
    assert store.batches(key["file_id"]) == committed
    retry = finished(run.worker(key, store.conninfo, name="usage-worker-retry"))
    run.finish()

    outcome = store.outcome(manifest)
    record(
        fault_table,
        fault="PostgreSQL crashed mid-batch",
        injection=f"`pg_ctl stop -m immediate` while batch {committed + 1}'s transaction waited (sums "
        "copied, the test holding a total it updates), then start (crash recovery)",
        behaviour=f"the worker failed on the lost connection ({error}); recovery kept the "
        f"{committed} committed batches and nothing of the open one; the retry went on from the "
        f"checkpoint ({retry['batches']} batches)",
        outcome=outcome,
    )
    assert outcome.exact, outcome


def test_the_network_dropped_mid_copy_then_the_retry_is_exact(
    store: Store, incoming: Path, fault_table
) -> None:
    manifest = one_file(incoming, seed=15)
    run = IngestRun(params(incoming), limits=SMALL_BATCHES)
    key = claim_one(run)
    with CuttingPostgresProxy(store.cluster.port) as proxy:
        proxy.cut_mid_copy(VICTIM_BATCH)
        error = failed(run.worker(key, store.through(proxy), name="usage-worker"))
        assert proxy.cut.is_set()
        store.wait_session_gone("usage-worker")
        assert store.batches(key["file_id"]) == VICTIM_BATCH - 1
        retry = finished(run.worker(key, store.through(proxy), name="usage-worker-retry"))
    run.finish()

    outcome = store.outcome(manifest)
    record(
        fault_table,
        fault="network dropped between worker and store mid-batch",
        injection=f"a proxy between worker and PostgreSQL passed on half of the first COPY data message "
        f"of batch {VICTIM_BATCH}, then closed both connections",
        behaviour=f"the worker failed on the lost connection ({error}); PostgreSQL rolled the "
        f"batch back; the retry went on from batch {VICTIM_BATCH} ({retry['batches']} batches)",
        outcome=outcome,
    )
    assert outcome.exact, outcome


def test_the_same_file_dropped_again_after_it_was_archived_is_a_recorded_duplicate(
    store: Store, incoming: Path, tmp_path: Path, fault_table
) -> None:
    manifest = write_files(incoming, files=2, seed=16, mtime=arrival(9), **{**FILE, "size_bytes": 1_000_000})
    archive = tmp_path / "archive"
    IngestRun(params(incoming), run_id="scheduled__first").run(LATER)
    name = manifest.files[0].name
    # The writer delivers the same content again under the same name, an hour later.
    again = incoming / name
    shutil.copyfile(archive / name, again)
    os.utime(again, (arrival(10).timestamp(), arrival(10).timestamp()))

    second = IngestRun(params(incoming), run_id="scheduled__second")
    assert second.claim(LATER) == []
    second.finish()

    with psycopg.connect(store.conninfo) as conn:
        drops = conn.execute("SELECT name, run_id, disposed_to FROM usage_ingest.duplicate_drops").fetchall()
    assert [(n, r) for n, r, _ in drops] == [(name, "scheduled__second")]
    assert not again.exists()
    assert Path(drops[0][2]).exists()
    outcome = store.outcome(manifest)

    # The same name with other content is another file: applied whole, in its own hour.
    other = write_files(
        tmp_path / "other",
        files=1,
        seed=17,
        mtime=arrival(11),
        prefix=name.removesuffix("0000.usage"),
        **FILE,
    )
    shutil.move(other.incoming / name, again)
    third = IngestRun(params(incoming), run_id="scheduled__third")
    assert len(third.claim(LATER)) == 1
    for key in third.claimed:
        third.process(key)
    third.finish()
    both = store.outcome(manifest, other)
    record(
        fault_table,
        fault="the same file dropped again under the same name",
        injection=f"{name}, processed and archived, copied back into incoming with a later mtime; then "
        "a file of other content under the same name",
        behaviour="the second run found (name, sha256) done: recorded it in duplicate_drops, moved it to "
        f"{Path(drops[0][2]).name} in the archive, claimed nothing; the other content was a new file, "
        "applied whole and booked to its own hour",
        outcome=both,
    )
    assert outcome.exact, outcome
    assert both.exact, both


def test_the_same_file_dropped_again_while_it_is_processed_is_applied_once(
    store: Store, incoming: Path, tmp_path: Path, fault_table
) -> None:
    manifest = one_file(incoming, seed=18)
    name = manifest.files[0].name
    first = IngestRun(params(incoming), run_id="scheduled__first", limits=SMALL_BATCHES)
    key = claim_one(first)
    killed_inside_a_batch(store, first, key, manifest)
    # The writer drops the same content again, the safe way (.part, then rename over the name).
    content = (incoming / name).read_bytes()
    part = incoming / f".{name}.part"
    part.write_bytes(content)
    os.utime(part, (arrival(9).timestamp() + 60, arrival(9).timestamp() + 60))
    part.replace(incoming / name)

    retry = first.worker(key, store.conninfo, name="usage-worker-retry")
    refused = failed(retry)
    assert "FileChanged" in refused
    assert "replaced" in refused
    # The operator is told that the same content needs nothing from them.
    assert "same content was dropped again over it, nothing is to be done" in refused
    second = IngestRun(params(incoming), run_id="scheduled__second", limits=SMALL_BATCHES)
    assert second.claim(LATER) == [], "a live claim was taken"
    lease_expired(store.conninfo, key["file_id"])
    third = IngestRun(params(incoming), run_id="scheduled__third", limits=SMALL_BATCHES)
    (taken,) = third.claim(LATER)
    assert taken["file_id"] == key["file_id"]
    third.process(taken)
    third.finish()

    outcome = store.outcome(manifest)
    record(
        fault_table,
        fault="the same file dropped again while it is processed",
        injection=f"while {name} was half applied (its worker killed inside batch {VICTIM_BATCH}), the "
        "writer wrote "
        "the same content to a .part and renamed it over the name",
        behaviour="the range's retry refused the replaced file (FileChanged: another inode), applying "
        "nothing; the next run left the live claim alone; once the lease expired a run took the same "
        "(name, sha256) over, on the new inode, and went on from the checkpoint",
        outcome=outcome,
    )
    assert outcome.exact, outcome


def test_two_workers_on_the_same_range_at_once_apply_each_batch_once(
    store: Store, incoming: Path, fault_table
) -> None:
    manifest = one_file(incoming, seed=19)
    run = IngestRun(params(incoming), limits=SMALL_BATCHES)
    key = claim_one(run)
    names = ["usage-zombie", "usage-retry"]
    # Both wait for the range's row, so both read the same checkpoint and race from the start.
    with psycopg.connect(store.conninfo) as holder:
        holder.execute(
            "SELECT 1 FROM usage_ingest.ranges WHERE file_id = %s AND range_no = %s FOR UPDATE",
            (key["file_id"], key["range_no"]),
        )
        workers = []
        for name in names:
            workers.append(run.worker(key, store.conninfo, name=name))
            wait_until_blocked(store.conninfo, application_name=name)
        holder.rollback()
    results = [finished(worker) for worker in workers]
    run.finish()

    assert sum(result["stale"] for result in results) >= 1
    outcome = store.outcome(manifest)
    record(
        fault_table,
        fault="two workers on the same range at once (a zombie and its retry)",
        injection="two worker processes started on the same range while the test held the range's row, "
        "so both read the same checkpoint; then let go",
        behaviour="both ran to the end; batches each committed: "
        + " and ".join(f"{r['batches']}" for r in results)
        + "; batches each found committed by the other first (stale: skipped, checkpoint re-read): "
        + " and ".join(f"{r['stale']}" for r in results)
        + "; every offset once in the batches log",
        outcome=outcome,
    )
    assert outcome.exact, outcome


def test_two_runs_claiming_at_once_claim_every_file_once(store: Store, incoming: Path, fault_table) -> None:
    manifest = write_files(incoming, files=6, seed=20, mtime=arrival(9), **{**FILE, "size_bytes": 1_000_000})
    # Three files a run: whichever claims first, the other must find its files busy and take the rest.
    runs = [IngestRun(params(incoming, max_files_per_run=3), run_id=f"scheduled__{n}") for n in ("a", "b")]
    errors: list[BaseException] = []

    def claim(run: IngestRun) -> None:
        try:
            run.claim(LATER)
        except BaseException as error:  # reported by the test's thread
            errors.append(error)

    with psycopg.connect(store.conninfo) as holder:
        holder.execute("LOCK TABLE usage_ingest.files IN ACCESS EXCLUSIVE MODE")
        threads = [threading.Thread(target=claim, args=(run,)) for run in runs]
        for thread in threads:
            thread.start()
        wait_until_blocked(store.conninfo, application_name=f"{DAG_ID}.claim_files", count=2)
        holder.rollback()
    for thread in threads:
        thread.join(120)

    assert errors == []
    held = [{key["file_id"] for key in run.claimed} for run in runs]
    files = store.files()
    assert len(files) == len(manifest.files)
    assert not held[0] & held[1]
    assert [len(files) for files in held] == [3, 3]
    for run in runs:
        for key in run.claimed:
            run.process(key)
        run.finish()
    outcome = store.outcome(manifest)
    record(
        fault_table,
        fault="two runs claiming at once",
        injection="two runs' claim_files (max_files_per_run 3) on the same folder of 6 files, started "
        "while the test locked the files ledger, then let go together",
        behaviour=f"every file claimed once: {len(held[0])} by one run, {len(held[1])} by the other (a "
        "file the other run held was busy, its lease live: left to it); each run processed and finished "
        "its own",
        outcome=outcome,
    )
    assert outcome.exact, outcome


def test_a_file_still_being_written_is_not_claimed_until_it_settles_and_a_part_never_is(
    store: Store, incoming: Path, tmp_path: Path, fault_table
) -> None:
    slow: list[Manifest] = []
    writer = threading.Thread(
        target=lambda: slow.append(
            write_files(
                incoming,
                files=1,
                seed=21,
                mode="in_place",
                in_place_chunk=64 * KIB,
                in_place_delay=0.05,
                **{**FILE, "size_bytes": 2_000_000},
            )
        )
    )
    # The writer's disk filled: its .part is left behind, half written, never renamed.
    full = write_files(tmp_path / "disk_full", files=1, seed=22, **FILE)
    partial = (full.incoming / full.files[0].name).read_bytes()
    (incoming / f".{full.files[0].name}.part").parent.mkdir(parents=True, exist_ok=True)
    (incoming / f".{full.files[0].name}.part").write_bytes(partial[: len(partial) // 2])
    run = IngestRun(params(incoming, settle_seconds=30), run_id="scheduled__a")
    growing = incoming / "seed21-0000.usage"
    writer.start()
    seen = []
    wait_for(
        lambda: growing.exists() or not writer.is_alive(),
        "the writer wrote nothing",
        timeout_s=120,
        poll_s=0.005,
    )
    while writer.is_alive():
        size = growing.stat().st_size
        assert run.claim(datetime.now(UTC)) == []
        seen.append(size)
    writer.join()
    assert seen, "no scan while the writer wrote"
    assert min(seen) < slow[0].files[0].size, "no scan saw the file growing"
    # Just written: not settled yet.
    assert run.claim(datetime.now(UTC)) == []
    settled = datetime.fromtimestamp(growing.stat().st_mtime, UTC) + timedelta(seconds=31)
    for key in run.claim(settled):
        run.process(key)
    run.finish()

    assert [name for name, _, _ in store.files()] == [growing.name]
    outcome = store.outcome(slow[0])
    record(
        fault_table,
        fault="a writer still writing in place; a writer's disk filling",
        injection="the writer's slow mode appending 64 KiB every 50 ms while runs scanned; a half-written "
        ".part left behind (as a writer out of disk space leaves it)",
        behaviour=f"{len(seen)} scans during the writing and one just after claimed nothing (mtime "
        "within settle_seconds); a scan 31 s after the last write claimed it and it was applied; the "
        ".part was never read",
        outcome=outcome,
    )
    assert outcome.exact, outcome


def test_a_host_that_died_mid_range_is_taken_over_once_its_lease_expires(
    store: Store, incoming: Path, fault_table
) -> None:
    manifest = one_file(incoming, seed=23)
    dead = IngestRun(params(incoming), run_id="scheduled__dead", limits=SMALL_BATCHES)
    key = claim_one(dead)
    killed_inside_a_batch(store, dead, key, manifest)
    # The host is gone: no retry of its task. A later run finds the claim live, then expired.
    later = IngestRun(params(incoming), run_id="scheduled__later", limits=SMALL_BATCHES)
    assert later.claim(LATER) == []
    lease_expired(store.conninfo, key["file_id"])
    assert later.claim(LATER) == [key]
    for taken in later.claimed:
        later.process(taken)
    later.finish()

    assert store.files() == [(manifest.files[0].name, "done", "scheduled__later")]
    outcome = store.outcome(manifest)
    record(
        fault_table,
        fault="the host died mid-file",
        injection=f"the worker SIGKILLed inside batch {VICTIM_BATCH} and never retried (its host is "
        "gone); the claim's lease moved past its end",
        behaviour="a run during the lease left the file alone; the next after it took the claim over "
        "(taken_over), went on from the checkpoint, finished and archived the file",
        outcome=outcome,
    )
    assert outcome.exact, outcome


def test_the_measure_sees_a_line_lost_a_line_doubled_and_a_unit_off(store: Store, incoming: Path) -> None:
    """The rows above read 0 / 0 because the ingest was exact, not because the measure is blind."""
    manifest = one_file(incoming, seed=24, size_bytes=1_000_000)
    IngestRun(params(incoming), limits=SMALL_BATCHES).run(LATER)
    assert store.outcome(manifest).exact
    with psycopg.connect(store.conninfo) as conn:
        conn.execute(
            "UPDATE usage_ingest.consumer_totals SET amount = amount + 1"
            " WHERE consumer_id = (SELECT min(consumer_id) FROM usage_ingest.consumer_totals)"
        )
        (first, second) = conn.execute(
            "SELECT file_id, range_no, start_offset, end_offset, first_line, lines_applied,"
            " lines_quarantined FROM usage_ingest.batches ORDER BY start_offset LIMIT 2"
        ).fetchall()
        conn.execute(
            "UPDATE usage_ingest.batches SET lines_applied = lines_applied - 1"
            " WHERE file_id = %s AND range_no = %s AND start_offset = %s",
            first[:3],
        )
        # The second batch's lines once more, as if committed again from another offset.
        file_id, range_no, start, end, first_line, good, bad = second
        conn.execute(
            "INSERT INTO usage_ingest.batches (file_id, range_no, start_offset, end_offset, first_line,"
            " lines_applied, lines_quarantined, consumers, committed_by)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, 0, 'x')",
            (file_id, range_no, start + 1, end, first_line, good, bad),
        )

    outcome = store.outcome(manifest)

    assert (outcome.units_off, outcome.lines_lost, outcome.lines_doubled) == (1, 1, good + bad)
    assert outcome.files_unbalanced == 1
    assert not outcome.exact
