"""The usage ingest's store, against a real PostgreSQL: claims, exactly-once batches, books, summary."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from include.usage_ingest.model import BadLine, BadLineReason, Batch, ByteRange, FilePlan, FinishedFile
from include.usage_ingest.store import (
    SCHEMA,
    AccountMismatch,
    CheckpointMismatch,
    Claim,
    ClaimOutcome,
    RangeKey,
    apply_batch,
    claim_file,
    claimed_ranges,
    files_claimed_by,
    held_elsewhere,
    mark_done,
    range_state,
    record_disposal,
    record_duplicate,
    run_summary,
)

ROLE = "usage_ingest"
PASSWORD = "usage-password"
LEASE = timedelta(minutes=30)
EXPIRED = timedelta(seconds=-1)  # a lease that has run out when the next transaction looks at it
MTIME = datetime(2026, 12, 6, 9, 41, 7, tzinfo=UTC)
HOUR = datetime(2026, 12, 6, 9, tzinfo=UTC)
TABLES = ("files", "ranges", "batches", "consumer_totals", "usage_hourly", "quarantine", "duplicate_drops")


def plan_of(name: str, *parts: tuple[int, int], content: str = "v1", mtime: datetime = MTIME) -> FilePlan:
    """A file of consecutive ranges given as (bytes, lines)."""
    ranges, start, first_line = [], 0, 1
    for number, (size, lines) in enumerate(parts):
        ranges.append(ByteRange(number, start, start + size, first_line, lines))
        start, first_line = start + size, first_line + lines
    file = FinishedFile(f"/incoming/{name}", name, start, mtime, device=2049, inode=len(content) + 1000)
    return FilePlan(file, hashlib.sha256(content.encode()).hexdigest(), first_line - 1, tuple(ranges))


def batch(
    start: int, end: int, first_line: int, sums: dict[int, int], *bad: BadLine, lines: int = 0
) -> Batch:
    """``sums`` applied from ``lines`` lines (default: one line per consumer), plus ``bad``."""
    consumers = np.array(sorted(sums), dtype=np.int64)
    return Batch(
        start=start,
        end=end,
        first_line=first_line,
        applied_lines=lines or len(sums),
        consumers=consumers,
        amounts=np.array([sums[c] for c in consumers], dtype=np.int64),
        bad_lines=tuple(bad),
    )


def totals(conn: psycopg.Connection) -> dict[int, int]:
    with conn.transaction():
        return dict(conn.execute("SELECT consumer_id, amount FROM usage_ingest.consumer_totals").fetchall())


def snapshot(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    """Every row of the store, to compare before and after something that must change nothing."""
    with conn.transaction():
        return {
            table: conn.execute(
                sql.SQL("SELECT * FROM {} ORDER BY 1, 2, 3").format(sql.Identifier(SCHEMA, table))
            ).fetchall()
            for table in TABLES
        }


# --- claims -------------------------------------------------------------------------------------


def test_a_new_file_is_claimed_with_its_ranges_checkpointed_at_their_starts(conn: psycopg.Connection) -> None:
    plan = plan_of("2026/12/a.usage", (100, 10), (50, 4))

    claim = claim_file(conn, plan, run_id="run-1", lease=LEASE)

    assert claim.outcome is ClaimOutcome.CLAIMED
    assert claimed_ranges(conn, "run-1") == [
        RangeKey(claim.file_id, 0, "2026/12/a.usage [1/2]"),
        RangeKey(claim.file_id, 1, "2026/12/a.usage [2/2]"),
    ]
    second = range_state(conn, claim.file_id, 1)
    assert (second.committed_offset, second.end_offset, second.next_line, second.done) == (
        100,
        150,
        11,
        False,
    )
    assert (second.path, second.size, second.mtime, second.device, second.inode) == (
        plan.file.path,
        150,
        MTIME,
        2049,
        plan.file.inode,
    )
    assert second.arrival_hour == HOUR


def test_the_same_run_claiming_again_keeps_the_file_and_its_progress(conn: psycopg.Connection) -> None:
    plan = plan_of("a.usage", (100, 10))
    first = claim_file(conn, plan, run_id="run-1", lease=LEASE)
    assert apply_batch(
        conn, first.file_id, 0, batch(0, 40, 1, {7: 5}, lines=4), committed_by="run-1", lease=LEASE
    )

    again = claim_file(conn, plan, run_id="run-1", lease=LEASE)

    assert again == Claim(ClaimOutcome.OURS, first.file_id)
    assert range_state(conn, first.file_id, 0).committed_offset == 40


def test_a_file_under_a_live_lease_is_left_to_its_run(conn: psycopg.Connection) -> None:
    plan = plan_of("a.usage", (100, 10))
    first = claim_file(conn, plan, run_id="run-1", lease=LEASE)

    assert claim_file(conn, plan, run_id="run-2", lease=LEASE) == Claim(ClaimOutcome.BUSY, first.file_id)
    assert claimed_ranges(conn, "run-2") == []
    assert len(claimed_ranges(conn, "run-1")) == 1


def test_only_the_very_file_another_run_holds_under_a_live_lease_is_held_elsewhere(
    conn: psycopg.Connection,
) -> None:
    plan = plan_of("a.usage", (100, 10))
    claim_file(conn, plan, run_id="run-1", lease=LEASE)

    assert held_elsewhere(conn, plan.file, run_id="run-2")
    assert not held_elsewhere(conn, plan.file, run_id="run-1")
    assert not held_elsewhere(conn, replace(plan.file, inode=plan.file.inode + 1), run_id="run-2")
    assert not held_elsewhere(conn, replace(plan.file, size=plan.file.size + 1), run_id="run-2")
    claim_file(conn, plan, run_id="run-1", lease=EXPIRED)
    assert not held_elsewhere(conn, plan.file, run_id="run-2")


def test_a_file_whose_lease_expired_is_taken_over_where_its_checkpoint_is(conn: psycopg.Connection) -> None:
    plan = plan_of("a.usage", (100, 10), (100, 10))
    first = claim_file(conn, plan, run_id="run-1", lease=EXPIRED)
    apply_batch(
        conn, first.file_id, 0, batch(0, 100, 1, {1: 1}, lines=10), committed_by="run-1", lease=EXPIRED
    )
    moved = plan_of("a.usage", (100, 10), (100, 10), mtime=MTIME + timedelta(hours=3))

    claim = claim_file(conn, moved, run_id="run-2", lease=LEASE)

    assert claim == Claim(ClaimOutcome.TAKEN_OVER, first.file_id)
    assert claimed_ranges(conn, "run-1") == []
    assert claimed_ranges(conn, "run-2") == [RangeKey(first.file_id, 1, "a.usage [2/2]")]
    state = range_state(conn, first.file_id, 1)
    # The file as it is now, to compare with what the range task opens; usage stays in its first hour.
    assert (state.mtime, state.arrival_hour) == (moved.file.mtime, HOUR)
    assert claim_file(conn, plan, run_id="run-3", lease=LEASE).outcome is ClaimOutcome.BUSY


def test_a_done_file_dropped_again_is_a_duplicate_recorded_once(conn: psycopg.Connection) -> None:
    plan = plan_of("a.usage", (10, 1))
    first = claim_file(conn, plan, run_id="run-1", lease=LEASE)
    apply_batch(conn, first.file_id, 0, batch(0, 10, 1, {1: 5}), committed_by="run-1", lease=LEASE)
    mark_done(conn, first.file_id)

    # Left behind by a crash between done and disposal: nothing says where it went.
    assert claim_file(conn, plan, run_id="run-2", lease=LEASE) == Claim(
        ClaimOutcome.DUPLICATE, first.file_id, None
    )
    record_disposal(conn, first.file_id, "/archive/a.usage")
    again = claim_file(conn, plan, run_id="run-3", lease=LEASE)
    for _ in range(2):  # a retried claim_files records the same drop again
        record_duplicate(
            conn, plan, original_file_id=first.file_id, run_id="run-3", disposed_to="/archive/a.1.usage"
        )

    assert again == Claim(ClaimOutcome.DUPLICATE, first.file_id, "/archive/a.usage")
    with conn.transaction():
        drops = conn.execute(
            "SELECT name, file_id, run_id, disposed_to FROM usage_ingest.duplicate_drops"
        ).fetchall()
    assert drops == [("a.usage", first.file_id, "run-3", "/archive/a.1.usage")]
    assert totals(conn) == {1: 5}


def test_a_name_reused_for_other_content_is_a_new_file(conn: psycopg.Connection) -> None:
    first = claim_file(conn, plan_of("a.usage", (10, 1), content="v1"), run_id="run-1", lease=LEASE)
    apply_batch(conn, first.file_id, 0, batch(0, 10, 1, {1: 5}), committed_by="run-1", lease=LEASE)
    mark_done(conn, first.file_id)

    second = claim_file(conn, plan_of("a.usage", (10, 1), content="v2"), run_id="run-2", lease=LEASE)

    assert second.outcome is ClaimOutcome.CLAIMED
    assert second.file_id != first.file_id


def test_two_runs_claiming_one_file_at_once_get_it_once(
    usage_conninfo: str, conn: psycopg.Connection
) -> None:
    plan = plan_of("a.usage", (100, 10), (100, 10))
    start = threading.Barrier(2)
    claims: dict[str, Claim] = {}

    def claim(run_id: str) -> None:
        with psycopg.connect(usage_conninfo) as own:
            start.wait()
            claims[run_id] = claim_file(own, plan, run_id=run_id, lease=LEASE)

    threads = [threading.Thread(target=claim, args=(run_id,)) for run_id in ("run-1", "run-2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(c.outcome for c in claims.values()) == [ClaimOutcome.BUSY, ClaimOutcome.CLAIMED]
    assert len({c.file_id for c in claims.values()}) == 1
    winner = next(run for run, c in claims.items() if c.outcome is ClaimOutcome.CLAIMED)
    assert [k.range_no for k in claimed_ranges(conn, winner)] == [0, 1]


def test_a_plan_whose_ranges_do_not_tile_the_file_is_refused(conn: psycopg.Connection) -> None:
    plan = plan_of("a.usage", (100, 10), (100, 10))
    gap = FilePlan(plan.file, plan.sha256, plan.lines, (plan.ranges[0], ByteRange(1, 120, 200, 11, 10)))

    with pytest.raises(ValueError, match=r"a\.usage does not tile"):
        claim_file(conn, gap, run_id="run-1", lease=LEASE)
    assert snapshot(conn)["files"] == []


# --- batches ------------------------------------------------------------------------------------


def claimed(
    conn: psycopg.Connection, *parts: tuple[int, int], name: str = "a.usage", run_id: str = "run-1"
) -> int:
    return claim_file(conn, plan_of(name, *parts), run_id=run_id, lease=LEASE).file_id


def test_a_batch_adds_its_sums_to_the_totals_and_to_the_files_hour(conn: psycopg.Connection) -> None:
    earlier = claimed(conn, (10, 1), name="earlier.usage")
    apply_batch(conn, earlier, 0, batch(0, 10, 1, {7: 100}), committed_by="run-1", lease=LEASE)
    file_id = claimed(conn, (300, 30))
    bad = BadLine(3, BadLineReason.NEGATIVE, b"7 -5\r"), BadLine(9, BadLineReason.FIELD_COUNT, b"\xff\x00 ")

    assert apply_batch(
        conn, file_id, 0, batch(0, 120, 1, {7: 5, 9: 2**40}, *bad, lines=10), committed_by="t", lease=LEASE
    )

    assert totals(conn) == {7: 105, 9: 2**40}
    with conn.transaction():
        hourly = conn.execute(
            "SELECT hour, consumer_id, amount FROM usage_ingest.usage_hourly ORDER BY 2"
        ).fetchall()
        quarantine = conn.execute(
            "SELECT line_number, reason, raw, range_no, batch_start FROM usage_ingest.quarantine ORDER BY 1"
        ).fetchall()
        logged = conn.execute(
            "SELECT start_offset, end_offset, first_line, lines_applied, lines_quarantined, consumers,"
            " committed_by FROM usage_ingest.batches WHERE file_id = %s",
            (file_id,),
        ).fetchall()
    assert hourly == [(HOUR, 7, 105), (HOUR, 9, 2**40)]
    assert quarantine == [(3, "negative", b"7 -5\r", 0, 0), (9, "not_two_fields", b"\xff\x00 ", 0, 0)]
    assert logged == [(0, 120, 1, 10, 2, 2, "t")]
    state = range_state(conn, file_id, 0)
    assert (state.committed_offset, state.next_line, state.done) == (120, 13, False)


def test_a_batch_of_only_bad_lines_moves_the_checkpoint(conn: psycopg.Connection) -> None:
    file_id = claimed(conn, (20, 2))
    bad = BadLine(1, BadLineReason.EMPTY, b""), BadLine(2, BadLineReason.OUT_OF_RANGE, b"1 9999999999999")

    assert apply_batch(conn, file_id, 0, batch(0, 20, 1, {}, *bad), committed_by="t", lease=LEASE)

    assert totals(conn) == {}
    assert range_state(conn, file_id, 0).done


def test_a_stale_batch_applies_nothing(conn: psycopg.Connection) -> None:
    file_id = claimed(conn, (300, 30))
    first = batch(0, 120, 1, {7: 5}, BadLine(2, BadLineReason.EMPTY, b""), lines=9)
    assert apply_batch(conn, file_id, 0, first, committed_by="t", lease=LEASE)
    before = snapshot(conn)

    assert not apply_batch(conn, file_id, 0, first, committed_by="t", lease=LEASE)
    # A process that read the file with other batch limits: its batch starts inside a committed one.
    assert not apply_batch(
        conn, file_id, 0, batch(60, 300, 7, {7: 1}, lines=24), committed_by="t", lease=LEASE
    )

    assert snapshot(conn) == before


def test_two_processes_committing_one_batch_at_once_apply_it_once(
    usage_conninfo: str, conn: psycopg.Connection
) -> None:
    file_id = claimed(conn, (300, 30))
    both = batch(0, 120, 1, {7: 5, 8: 1}, lines=12)
    start = threading.Barrier(2)
    applied: list[bool] = []

    def commit() -> None:
        with psycopg.connect(usage_conninfo) as own:
            start.wait()
            applied.append(apply_batch(own, file_id, 0, both, committed_by="t", lease=LEASE))

    threads = [threading.Thread(target=commit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(applied) == [False, True]
    assert totals(conn) == {7: 5, 8: 1}
    assert range_state(conn, file_id, 0).committed_offset == 120


def test_a_batch_that_starts_at_the_checkpoint_but_not_at_its_line_is_refused(
    conn: psycopg.Connection,
) -> None:
    file_id = claimed(conn, (300, 30))
    before = snapshot(conn)

    with pytest.raises(
        CheckpointMismatch, match=r"a\.usage range 0: .* lines \[5, 6\) .* checkpoint at line 1 "
    ):
        apply_batch(conn, file_id, 0, batch(0, 120, 5, {7: 5}), committed_by="t", lease=LEASE)
    with pytest.raises(CheckpointMismatch, match=r"range that ends at byte 300, line 31"):
        apply_batch(conn, file_id, 0, batch(0, 301, 1, {7: 5}), committed_by="t", lease=LEASE)

    assert snapshot(conn) == before


def test_a_failure_inside_the_batch_leaves_everything_as_it_was(conn: psycopg.Connection) -> None:
    full = claimed(conn, (10, 1), name="full.usage")
    apply_batch(conn, full, 0, batch(0, 10, 1, {5: 2**63 - 10}), committed_by="t", lease=LEASE)
    file_id = claimed(conn, (300, 30))
    before = snapshot(conn)
    overflowing = batch(0, 300, 1, {1: 1, 5: 11, 9: 1}, BadLine(3, BadLineReason.EMPTY, b""), lines=29)

    with pytest.raises(psycopg.errors.NumericValueOutOfRange):
        apply_batch(conn, file_id, 0, overflowing, committed_by="t", lease=LEASE)

    assert snapshot(conn) == before
    assert totals(conn)[5] == 2**63 - 10


def test_apply_batch_refuses_to_run_inside_a_callers_transaction(conn: psycopg.Connection) -> None:
    file_id = claimed(conn, (10, 1))
    conn.execute("SELECT 1")  # opens a transaction: the batch would only be a savepoint in it

    with pytest.raises(RuntimeError, match="no transaction open"):
        apply_batch(conn, file_id, 0, batch(0, 10, 1, {1: 1}), committed_by="t", lease=LEASE)
    conn.rollback()


def test_a_batch_renews_its_files_lease(conn: psycopg.Connection) -> None:
    plan = plan_of("a.usage", (100, 10))
    file_id = claim_file(conn, plan, run_id="run-1", lease=EXPIRED).file_id

    apply_batch(conn, file_id, 0, batch(0, 50, 1, {1: 1}, lines=5), committed_by="run-1", lease=LEASE)

    assert claim_file(conn, plan, run_id="run-2", lease=LEASE).outcome is ClaimOutcome.BUSY


# --- books and summary --------------------------------------------------------------------------


def test_a_file_is_marked_done_only_when_its_lines_balance(conn: psycopg.Connection) -> None:
    file_id = claimed(conn, (100, 10), (100, 10))
    apply_batch(conn, file_id, 0, batch(0, 100, 1, {1: 1}, lines=10), committed_by="t", lease=LEASE)

    with pytest.raises(
        AccountMismatch, match=r"a\.usage .* planned 20 lines, committed 10 applied \+ 0 .* 1 of 2"
    ):
        mark_done(conn, file_id)
    with pytest.raises(LookupError, match="not a done file"):
        record_disposal(conn, file_id, "/archive/a.usage")

    apply_batch(
        conn,
        file_id,
        1,
        batch(100, 200, 11, {1: 1}, BadLine(20, BadLineReason.EMPTY, b""), lines=9),
        committed_by="t",
        lease=LEASE,
    )
    done = mark_done(conn, file_id)
    assert (done.state, done.lines_applied, done.lines_quarantined, done.balanced) == ("done", 19, 1, True)
    assert mark_done(conn, file_id) == done
    record_disposal(conn, file_id, "/archive/a.usage")
    record_disposal(conn, file_id, "/archive/a.usage")
    assert files_claimed_by(conn, "run-1")[0].disposed_to == "/archive/a.usage"
    assert claimed_ranges(conn, "run-1") == []


def test_a_batch_that_ends_its_range_short_of_its_lines_is_refused(conn: psycopg.Connection) -> None:
    file_id = claimed(conn, (100, 10))

    # The parser found fewer lines than planning counted: the range would end with lines missing.
    with pytest.raises(CheckpointMismatch, match=r"lines \[1, 10\) .* ends at byte 100, line 11"):
        apply_batch(conn, file_id, 0, batch(0, 100, 1, {1: 1}, lines=9), committed_by="t", lease=LEASE)
    with pytest.raises(CheckpointMismatch, match=r"lines \[1, 12\)"):
        apply_batch(conn, file_id, 0, batch(0, 50, 1, {1: 1}, lines=11), committed_by="t", lease=LEASE)

    with pytest.raises(
        AccountMismatch, match=r"a\.usage .* planned 10 lines, committed 0 applied \+ 0 .* 0 of 1"
    ):
        mark_done(conn, file_id)
    assert files_claimed_by(conn, "run-1")[0].state == "claimed"


def test_an_empty_file_is_done_without_a_batch(conn: psycopg.Connection) -> None:
    file_id = claim_file(conn, plan_of("empty.usage", (0, 0)), run_id="run-1", lease=LEASE).file_id

    assert claimed_ranges(conn, "run-1") == []
    assert mark_done(conn, file_id).balanced


def test_the_run_summary_counts_the_runs_files_lines_reasons_and_duplicates(conn: psycopg.Connection) -> None:
    other = claimed(conn, (10, 2), name="other.usage", run_id="run-0")
    apply_batch(
        conn,
        other,
        0,
        batch(0, 10, 1, {3: 50}, BadLine(2, BadLineReason.EMPTY, b"")),
        committed_by="run-0",
        lease=LEASE,
    )
    a = claimed(conn, (100, 10))
    b = claimed(conn, (100, 4), name="b.usage")
    bad = BadLine(4, BadLineReason.NEGATIVE, b"1 -1"), BadLine(5, BadLineReason.NEGATIVE, b"-1 1")
    apply_batch(
        conn, a, 0, batch(0, 100, 1, {1: 10, 2: 30}, *bad, lines=8), committed_by="run-1", lease=LEASE
    )
    apply_batch(
        conn,
        b,
        0,
        batch(0, 60, 1, {3: 1}, BadLine(2, BadLineReason.EMPTY, b"")),
        committed_by="run-1",
        lease=LEASE,
    )
    done = plan_of("done.usage", (10, 1))
    done_id = claim_file(conn, done, run_id="run-0", lease=LEASE).file_id
    apply_batch(conn, done_id, 0, batch(0, 10, 1, {4: 1}), committed_by="run-0", lease=LEASE)
    mark_done(conn, done_id)
    record_duplicate(
        conn, done, original_file_id=done_id, run_id="run-1", disposed_to="/archive/done.1.usage"
    )

    summary = run_summary(conn, "run-1", top=2)

    assert (summary.files, summary.lines, summary.lines_applied, summary.lines_quarantined) == (2, 14, 9, 3)
    assert summary.quarantined_by_reason == {"negative": 2, "empty": 1}
    assert (summary.duplicates, summary.consumers_in_store) == (1, 4)
    assert summary.top_consumers == [(3, 51), (2, 30)]


# --- the property -------------------------------------------------------------------------------

LINES = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 10**12)), min_size=1, max_size=40)


@st.composite
def split_file(draw: st.DrawFn) -> tuple[list[tuple[int, int]], list[int], list[int], list[bool]]:
    """Lines, cut into ranges and each range into batches anywhere, and where a batch is replayed."""
    lines = draw(LINES)
    n = len(lines)
    range_cuts = sorted({*draw(st.lists(st.integers(1, n), max_size=3)), n})
    batch_cuts = sorted({*draw(st.lists(st.integers(1, n), max_size=n)), *range_cuts})
    replays = draw(st.lists(st.booleans(), min_size=len(batch_cuts), max_size=len(batch_cuts)))
    return lines, range_cuts, batch_cuts, replays


@pytest.fixture
def store(conn: psycopg.Connection) -> Callable[[], psycopg.Connection]:
    """The store emptied for each hypothesis example (a database per example would be too slow)."""

    def emptied() -> psycopg.Connection:
        with conn.transaction():
            conn.execute(
                sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(sql.Identifier(SCHEMA, t) for t in TABLES))
            )
        return conn

    return emptied


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(split=split_file())
def test_batches_split_anywhere_and_replayed_add_every_line_once(
    store: Callable[[], psycopg.Connection],
    split: tuple[list[tuple[int, int]], list[int], list[int], list[bool]],
) -> None:
    conn = store()
    lines, range_cuts, batch_cuts, replays = split
    # Line i (0-based) is bytes [10 i, 10 i + 10).
    parts, start = [], 0
    for cut in range_cuts:
        parts.append((10 * (cut - start), cut - start))
        start = cut
    file_id = claimed(conn, *parts)
    range_of = {cut: number for number, cut in enumerate(range_cuts)}
    range_no, start, previous = 0, 0, None
    for cut, replay in zip(batch_cuts, replays, strict=True):
        sums: dict[int, int] = {}
        for consumer, amount in lines[start:cut]:
            sums[consumer] = sums.get(consumer, 0) + amount
        current = batch(10 * start, 10 * cut, start + 1, sums, lines=cut - start)
        assert apply_batch(conn, file_id, range_no, current, committed_by="t", lease=LEASE)
        if replay:
            assert not apply_batch(conn, file_id, range_no, current, committed_by="t", lease=LEASE)
            if previous is not None and previous[0] == range_no:
                assert not apply_batch(conn, file_id, range_no, previous[1], committed_by="t", lease=LEASE)
        previous = (range_no, current)
        if cut in range_of:
            range_no = range_of[cut] + 1
        start = cut

    expected: dict[int, int] = {}
    for consumer, amount in lines:
        expected[consumer] = expected.get(consumer, 0) + amount
    assert totals(conn) == expected
    assert mark_done(conn, file_id).lines_applied == len(lines)
