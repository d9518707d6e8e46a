"""Planning a file: its digest, its lines and line-aligned ranges, from one read."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.usage_ingest.finished import FileChanged, describe
from include.usage_ingest.lines import read_batches
from include.usage_ingest.model import BatchLimits, ByteRange, FinishedFile
from include.usage_ingest.planning import plan_file
from tests.include.usage_ingest.reference import ingest, split_lines


def written(tmp_path: Path, data: bytes) -> FinishedFile:
    path = tmp_path / "f.usage"
    path.write_bytes(data)
    return describe(path)


def test_a_small_file_is_one_range_with_its_digest_and_lines(tmp_path: Path) -> None:
    data = b"1 2\r\n\nx\n3 4"

    plan = plan_file(written(tmp_path, data), range_bytes=1000)

    assert (plan.sha256, plan.lines) == (hashlib.sha256(data).hexdigest(), 4)
    assert plan.ranges == (ByteRange(number=0, start=0, end=len(data), first_line=1, lines=4),)


def test_an_empty_file_is_one_range_of_no_lines(tmp_path: Path) -> None:
    plan = plan_file(written(tmp_path, b""), range_bytes=10)

    assert (plan.lines, plan.ranges) == (0, (ByteRange(0, 0, 0, 1, 0),))


def test_a_range_ends_at_its_last_line_break_within_its_size(tmp_path: Path) -> None:
    data = b"11 1\n22 2\n33 3\n44 4\n5 5"  # lines of 5 bytes, the last of 3 without a break

    plan = plan_file(written(tmp_path, data), range_bytes=12, block_bytes=4)

    assert plan.ranges == (
        ByteRange(0, 0, 10, 1, 2),
        ByteRange(1, 10, 20, 3, 2),
        ByteRange(2, 20, 23, 5, 1),
    )


def test_a_line_longer_than_a_range_is_a_range_of_its_own(tmp_path: Path) -> None:
    data = b"11 1\n22 2\n33 3\n"

    assert plan_file(written(tmp_path, data), range_bytes=3, block_bytes=4).ranges == (
        ByteRange(0, 0, 5, 1, 1),
        ByteRange(1, 5, 10, 2, 1),
        ByteRange(2, 10, 15, 3, 1),
    )


def test_a_file_that_changed_since_it_was_found_is_refused_by_name(tmp_path: Path) -> None:
    file = written(tmp_path, b"1 2\n")
    with Path(file.path).open("ab") as writer:
        writer.write(b"3 4\n")

    with pytest.raises(FileChanged, match=r"f\.usage .*raise settle_seconds"):
        plan_file(file, range_bytes=100)


def test_a_file_replaced_under_the_same_name_is_refused(tmp_path: Path) -> None:
    file = written(tmp_path, b"1 2\n")
    replacement = tmp_path / "new"
    replacement.write_bytes(b"5 6\n")
    os.utime(replacement, ns=(Path(file.path).stat().st_mtime_ns,) * 2)
    replacement.rename(file.path)

    with pytest.raises(FileChanged, match="replaced"):
        plan_file(file, range_bytes=100)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(
        st.sampled_from([b"1 10", b"22 3", b"", b"\r", b"x", b"333 1000000", b"-4 4"]), max_size=30
    ),
    final_newline=st.booleans(),
    range_bytes=st.integers(1, 60),
    block_bytes=st.integers(1, 40),
    limits=st.builds(BatchLimits, st.integers(1, 50), st.integers(1, 3)),
)
def test_planned_ranges_tile_the_file_and_their_batches_give_the_true_sums(
    tmp_path: Path,
    lines: list[bytes],
    final_newline: bool,
    range_bytes: int,
    block_bytes: int,
    limits: BatchLimits,
) -> None:
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    file = written(tmp_path, data)

    plan = plan_file(file, range_bytes=range_bytes, block_bytes=block_bytes)

    assert (plan.sha256, plan.lines) == (hashlib.sha256(data).hexdigest(), len(split_lines(data)))
    at, line = 0, 1
    for number, byte_range in enumerate(plan.ranges):
        assert (byte_range.number, byte_range.start, byte_range.first_line) == (number, at, line)
        assert byte_range.end > byte_range.start or plan.lines == 0
        assert byte_range.start == 0 or data[byte_range.start - 1 : byte_range.start] == b"\n"
        assert byte_range.lines == len(split_lines(data[byte_range.start : byte_range.end]))
        # At most range_bytes unless it is one longer line, and no room left for the next line.
        size = byte_range.end - byte_range.start
        assert size <= range_bytes or byte_range.lines == 1
        if number < len(plan.ranges) - 1:
            next_line = data.find(b"\n", byte_range.end)
            assert size + (next_line + 1 if next_line >= 0 else len(data)) - byte_range.end > range_bytes
        at, line = byte_range.end, line + byte_range.lines
    assert (at, line - 1) == (len(data), plan.lines)

    summed: Counter[int] = Counter()
    bad = []
    for byte_range in plan.ranges:
        for batch in read_batches(
            file.path,
            start=byte_range.start,
            end=byte_range.end,
            first_line=byte_range.first_line,
            limits=limits,
        ):
            summed.update(dict(zip(batch.consumers.tolist(), batch.amounts.tolist(), strict=True)))
            bad += [(b.line_number, b.reason) for b in batch.bad_lines]
    true_totals, true_bad, _ = ingest(data)
    assert (dict(summed), bad) == (dict(true_totals), true_bad)
