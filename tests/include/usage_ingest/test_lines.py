"""Parsing a byte range into batches: the line rules, line numbers, batch limits, exact sums."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.usage_ingest.finished import FileChanged
from include.usage_ingest.lines import MAX_BATCH_SUM, read_batches
from include.usage_ingest.model import RAW_TEXT_LIMIT, BadLine, BadLineReason, Batch, BatchLimits
from tests.include.usage_ingest.reference import ingest

R = BadLineReason
ROOMY = BatchLimits(max_bytes=1 << 30, max_consumers=1 << 30)


def batches_of(
    path: Path,
    data: bytes,
    *,
    limits: BatchLimits = ROOMY,
    start: int = 0,
    end: int | None = None,
    first_line: int = 1,
    block_bytes: int = 1 << 20,
    max_batch_sum: int = MAX_BATCH_SUM,
) -> list[Batch]:
    path.write_bytes(data)
    end = len(data) if end is None else end
    batches = list(
        read_batches(
            str(path),
            start=start,
            end=end,
            first_line=first_line,
            limits=limits,
            block_bytes=block_bytes,
            max_batch_sum=max_batch_sum,
        )
    )
    assert_tiles(batches, start, end, first_line)
    return batches


def assert_tiles(batches: list[Batch], start: int, end: int, first_line: int) -> None:
    """Batches follow each other without gap or overlap, in bytes and in line numbers."""
    at, line = start, first_line
    for batch in batches:
        assert (batch.start, batch.first_line) == (at, line)
        assert batch.end > batch.start
        assert batch.consumers.dtype == np.int64 == batch.amounts.dtype
        assert np.all(np.diff(batch.consumers) > 0)
        assert all(batch.first_line <= bad.line_number < batch.next_line for bad in batch.bad_lines)
        at, line = batch.end, batch.next_line
    assert at == end


def totals(batches: list[Batch]) -> Counter[int]:
    summed: Counter[int] = Counter()
    for batch in batches:
        for consumer, amount in zip(batch.consumers.tolist(), batch.amounts.tolist(), strict=True):
            summed[consumer] += amount
    return summed


def bad_lines(batches: list[Batch]) -> list[BadLine]:
    return [bad for batch in batches for bad in batch.bad_lines]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"", R.EMPTY),
        (b"\r", R.EMPTY),
        (b"1  2", R.FIELD_COUNT),
        (b" 1 2", R.FIELD_COUNT),
        (b"1 2 ", R.FIELD_COUNT),
        (b"1\t2", R.FIELD_COUNT),
        (b"1 2 3", R.FIELD_COUNT),
        (b"12", R.FIELD_COUNT),
        (b" ", R.FIELD_COUNT),
        (b"\r\r", R.FIELD_COUNT),
        (b"1 2\r \r", R.FIELD_COUNT),
        (b"1\t2 3", R.CONSUMER_NOT_INTEGER),
        (b"x1 2", R.CONSUMER_NOT_INTEGER),
        (b"1.5 2", R.CONSUMER_NOT_INTEGER),
        (b"+1 2", R.CONSUMER_NOT_INTEGER),
        (b"- 2", R.CONSUMER_NOT_INTEGER),
        (b"--1 2", R.CONSUMER_NOT_INTEGER),
        (b"1- 2", R.CONSUMER_NOT_INTEGER),
        ("١٢ 2".encode(), R.CONSUMER_NOT_INTEGER),
        (b"\xff1 2", R.CONSUMER_NOT_INTEGER),
        (b"-x -2", R.CONSUMER_NOT_INTEGER),
        (b"1 2.0", R.AMOUNT_NOT_INTEGER),
        (b"1 0x1f", R.AMOUNT_NOT_INTEGER),
        (b"1 +2", R.AMOUNT_NOT_INTEGER),
        (b"1 -", R.AMOUNT_NOT_INTEGER),
        (b"1 2\r\r", R.AMOUNT_NOT_INTEGER),
        ("1 ٣".encode(), R.AMOUNT_NOT_INTEGER),
        (b"-1 1e6", R.AMOUNT_NOT_INTEGER),
        (b"-1 2", R.NEGATIVE),
        (b"1 -2", R.NEGATIVE),
        (b"-0 2", R.NEGATIVE),
        (b"1 -0", R.NEGATIVE),
        (b"-99999999999999999999999 2", R.NEGATIVE),
        (b"9223372036854775808 2", R.OUT_OF_RANGE),
        (b"00009223372036854775808 2", R.OUT_OF_RANGE),
        (b"18446744073709551617 2", R.OUT_OF_RANGE),
        (b"1 1000000000001", R.OUT_OF_RANGE),
        (b"1 9999999999999", R.OUT_OF_RANGE),
        (b"1 18446744073709551617", R.OUT_OF_RANGE),
    ],
)
def test_a_bad_line_is_quarantined_with_its_one_reason_and_number(
    tmp_path: Path, line: bytes, reason: BadLineReason
) -> None:
    [batch] = batches_of(tmp_path / "f.usage", b"7 5\n" + line + b"\n7 6\n")

    assert batch.bad_lines == (BadLine(2, reason, line.removesuffix(b"\r")),)
    assert (batch.applied_lines, batch.consumers.tolist(), batch.amounts.tolist()) == (2, [7], [11])


@pytest.mark.parametrize(
    ("line", "consumer", "amount"),
    [
        (b"0 0", 0, 0),
        (b"1 2\r", 1, 2),
        (b"007 0010", 7, 10),
        (b"9223372036854775807 1000000000000", 2**63 - 1, 10**12),
        (b"0009223372036854775807 00001000000000000", 2**63 - 1, 10**12),
        (b"0" * 40 + b"5 " + b"0" * 40 + b"3", 5, 3),
        (b"12345678 87654321", 12_345_678, 87_654_321),
        (b"1234567890123456 123456789", 1_234_567_890_123_456, 123_456_789),
        (b"12345678901234567 0999999999999", 12_345_678_901_234_567, 999_999_999_999),
    ],
)
def test_a_good_line_is_summed_including_crlf_leading_zeros_and_the_limits(
    tmp_path: Path, line: bytes, consumer: int, amount: int
) -> None:
    [batch] = batches_of(tmp_path / "f.usage", line + b"\n")

    assert (batch.consumers.tolist(), batch.amounts.tolist(), batch.bad_lines) == ([consumer], [amount], ())


def test_dense_and_scattered_ids_in_one_block_are_summed_exactly(tmp_path: Path) -> None:
    ids = [n % 50 for n in range(500)] + [2**63 - 1, 10**15, 10**15]
    data = b"".join(b"%d %d\n" % (consumer, 10**12) for consumer in ids)

    [batch] = batches_of(tmp_path / "f.usage", data)

    expected = Counter(ids)
    assert batch.consumers.tolist() == sorted(expected)
    assert batch.amounts.tolist() == [expected[consumer] * 10**12 for consumer in sorted(expected)]


def test_a_last_line_without_a_line_break_counts_and_blank_lines_are_bad(tmp_path: Path) -> None:
    [batch] = batches_of(tmp_path / "f.usage", b"1 2\r\n\n\r\n3 4\r\n1 10")

    assert batch.applied_lines == 3
    assert [(bad.line_number, bad.reason) for bad in batch.bad_lines] == [(2, R.EMPTY), (3, R.EMPTY)]
    assert dict(totals([batch])) == {1: 12, 3: 4}


def test_a_range_that_starts_mid_file_numbers_its_lines_from_its_first_line(tmp_path: Path) -> None:
    data = b"1 1\n2 2\nx 3\n4 4\n-5 5\n"
    start = data.index(b"x")

    [batch] = batches_of(tmp_path / "f.usage", data, start=start, end=len(data) - 6, first_line=3)

    assert [(bad.line_number, bad.reason) for bad in batch.bad_lines] == [(3, R.CONSUMER_NOT_INTEGER)]
    assert (batch.applied_lines, batch.next_line, dict(totals([batch]))) == (1, 5, {4: 4})


def test_a_quarantined_line_keeps_a_bounded_prefix_of_its_bytes(tmp_path: Path) -> None:
    line = b"1 " + b"x" * 5000

    [batch] = batches_of(tmp_path / "f.usage", line + b"\n", block_bytes=100)

    assert batch.bad_lines == (BadLine(1, R.AMOUNT_NOT_INTEGER, line[:RAW_TEXT_LIMIT]),)


def test_one_consumer_per_batch_cuts_where_the_next_consumer_starts(tmp_path: Path) -> None:
    data = b"1 1\n1 2\nbad\n2 3\n2 4\n\n1 5\n"

    batches = batches_of(tmp_path / "f.usage", data, limits=BatchLimits(1 << 20, 1), block_bytes=5)

    assert [(b.consumers.tolist(), b.amounts.tolist(), b.lines) for b in batches] == [
        ([1], [3], 3),
        ([2], [7], 3),
        ([1], [5], 1),
    ]


def test_two_consumers_per_batch_at_most_with_any_block_size(tmp_path: Path) -> None:
    data = b"".join(b"%d %d\n" % (c, c) for c in [3, 1, 3, 2, 2, 1, 5, 5, 4])
    for block_bytes in (1, 4, 9, 1 << 20):
        batches = batches_of(
            tmp_path / "f.usage", data, limits=BatchLimits(1 << 20, 2), block_bytes=block_bytes
        )

        assert [b.consumers.tolist() for b in batches] == [[1, 3], [1, 2], [4, 5]]
        assert dict(totals(batches)) == {1: 2, 2: 4, 3: 6, 4: 4, 5: 10}


def test_a_byte_limit_below_a_line_makes_one_batch_per_line(tmp_path: Path) -> None:
    data = b"10 1\n20 2\n\n30 3"

    batches = batches_of(tmp_path / "f.usage", data, limits=BatchLimits(3, 1 << 20), block_bytes=3)

    assert [(b.start, b.end, b.lines) for b in batches] == [(0, 5, 1), (5, 10, 1), (10, 11, 1), (11, 15, 1)]


def test_batches_stay_within_the_byte_limit_and_use_it(tmp_path: Path) -> None:
    data = b"".join(b"%d 1\n" % (n % 7) for n in range(1000))  # 4 bytes a line

    batches = batches_of(tmp_path / "f.usage", data, limits=BatchLimits(401, 1 << 20), block_bytes=64)

    assert [b.end - b.start for b in batches] == [400] * 10


def test_a_batch_ends_before_its_sums_could_pass_the_sum_limit(tmp_path: Path) -> None:
    # The real limit is int64's maximum (about 130 MiB of the largest amounts); a small one here.
    data = b"7 5\n" * 4 + b"8 9\n" + b"7 5\n" * 3

    batches = batches_of(tmp_path / "f.usage", data, max_batch_sum=12)
    # Blocks of two lines: a block that does not fit the open batch starts the next one.
    small_blocks = batches_of(tmp_path / "g.usage", data, block_bytes=8, max_batch_sum=12)

    assert [int(batch.amounts.sum()) for batch in batches] == [10, 10, 9, 10, 5]
    assert [batch.lines for batch in batches] == [2, 2, 1, 2, 1]
    assert all(int(batch.amounts.sum()) <= 12 for batch in small_blocks)
    assert totals(small_blocks) == totals(batches) == Counter({7: 35, 8: 9})


def test_one_line_above_the_sum_limit_is_a_batch_of_its_own(tmp_path: Path) -> None:
    batches = batches_of(tmp_path / "f.usage", b"7 5\n7 50\n7 5\n", max_batch_sum=12)

    assert [(batch.consumers.tolist(), batch.amounts.tolist()) for batch in batches] == [
        ([7], [5]),
        ([7], [50]),
        ([7], [5]),
    ]


def test_an_empty_range_has_no_batches(tmp_path: Path) -> None:
    assert batches_of(tmp_path / "f.usage", b"") == []


def test_a_file_shorter_than_its_range_says_its_writer_was_not_done(tmp_path: Path) -> None:
    path = tmp_path / "f.usage"
    path.write_bytes(b"1 2\n")

    with pytest.raises(FileChanged, match=r"f\.usage ends at byte 4.*raise settle_seconds"):
        list(read_batches(str(path), start=0, end=10, first_line=1, limits=ROOMY))


# Lines of every kind, short ones more often, so that limits and block sizes bite.
LINE = st.one_of(
    st.builds(lambda c, a: b"%d %d" % (c, a), st.integers(0, 12), st.integers(0, 10**12)),
    st.builds(lambda c, a: b"%d %d" % (c, a), st.integers(0, 2**63 - 1), st.integers(0, 99)),
    st.sampled_from(
        [b"", b"\r", b"1 2\r", b"007 08", b"-1 2", b"1  2", b"x 1", b"1 1e3", b"1 10000000000000"]
    ),
    st.binary(max_size=12),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(LINE.filter(lambda line: b"\n" not in line), max_size=40),
    final_newline=st.booleans(),
    max_bytes=st.integers(1, 120),
    max_consumers=st.integers(1, 6),
    block_bytes=st.integers(1, 64),
    split=st.integers(0, 40),
)
def test_any_lines_any_limits_any_blocks_any_split_give_the_true_sums(
    tmp_path: Path,
    lines: list[bytes],
    final_newline: bool,
    max_bytes: int,
    max_consumers: int,
    block_bytes: int,
    split: int,
) -> None:
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    true_totals, true_bad, line_count = ingest(data)
    # Two ranges split after some line, as planning makes them.
    cut = sum(len(line) + 1 for line in lines[:split]) if split < len(lines) else len(data)
    limits = BatchLimits(max_bytes, max_consumers)
    path = tmp_path / "f.usage"
    batches = batches_of(path, data, limits=limits, end=cut, block_bytes=block_bytes)
    batches += batches_of(
        path, data, limits=limits, start=cut, first_line=min(split, len(lines)) + 1, block_bytes=block_bytes
    )

    assert dict(totals(batches)) == dict(true_totals)  # a consumer summing to 0 is there too
    assert [(bad.line_number, bad.reason) for bad in bad_lines(batches)] == true_bad
    assert sum(batch.lines for batch in batches) == line_count
    for batch in batches:
        assert len(batch.consumers) <= max_consumers
        assert batch.end - batch.start <= max_bytes or batch.lines == 1
