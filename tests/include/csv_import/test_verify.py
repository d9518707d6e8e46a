"""Every line of a run accounted for, its totals for the asset event, and the rejected-share gate."""

from __future__ import annotations

import psycopg
import pytest

from include.csv_import.importer import import_chunk
from include.csv_import.model import Reject, RejectReason, Row, SourceFile
from include.csv_import.publish import publish
from include.csv_import.verify import (
    RowsUnaccounted,
    TooManyRejects,
    check_rejected_share,
    summarize,
    verify_run,
)
from tests.include.csv_import.conftest import StartRun, source, whole


def good(first: int, count: int) -> list[Row]:
    return [Row(line, (str(line), "x", "1", "2024-01-01")) for line in range(first, first + count)]


def bad(line: int, reason: RejectReason = RejectReason.WRONG_FIELD_COUNT) -> Reject:
    return Reject(line, reason, None, "1,2", "expected 4 fields, found 2")


@pytest.fixture
def drop(conn: psycopg.Connection, start: StartRun) -> tuple[int, SourceFile, SourceFile]:
    """A run of two files: a.csv with 8 rows and 2 rejects, b.csv with 1 row refused by PostgreSQL."""
    a, b = source("a.csv", size=400), source("b.csv", size=100)
    run_id = start("run-1", [a, b])
    import_chunk(
        conn, run_id, whole(a), [*good(2, 4), bad(6), *good(7, 4), bad(11, RejectReason.INVALID_ENCODING)]
    )
    import_chunk(conn, run_id, whole(b), [Row(2, ("1", "x", "1", "2024-13-01"))])
    return run_id, a, b


def test_a_published_run_adds_up_and_its_totals_name_rows_bytes_and_reasons(
    conn: psycopg.Connection, drop: tuple[int, SourceFile, SourceFile]
) -> None:
    run_id, _, _ = drop
    publish(conn, run_id)

    summary = verify_run(conn, run_id)

    assert summary.as_asset_extra() == {
        "run_id": run_id,
        "table": "landing.certificates",
        "files": 2,
        "files_skipped": 0,
        "rows": 8,
        "bytes": 500,
        "rejects": 3,
        "rejects_by_reason": {"invalid_encoding": 1, "type_mismatch": 1, "wrong_field_count": 1},
    }
    assert "8 row(s)" in summary.describe()


def test_a_row_missing_from_the_target_fails_verification_naming_the_file(
    conn: psycopg.Connection, admin: psycopg.Connection, drop: tuple[int, SourceFile, SourceFile]
) -> None:
    run_id, _, _ = drop
    publish(conn, run_id)
    admin.execute("DELETE FROM landing.certificates WHERE id = 3")

    with pytest.raises(RowsUnaccounted, match=r"a\.csv: 7 row\(s\) in the target .* the ledger says 8"):
        verify_run(conn, run_id)


def test_too_many_rejects_fail_the_run_with_the_files_and_counts(
    conn: psycopg.Connection, drop: tuple[int, SourceFile, SourceFile]
) -> None:
    run_id, _, _ = drop
    # 3 of 11 records rejected: 27%.
    check_rejected_share(conn, run_id, 0.3)
    with pytest.raises(TooManyRejects) as failure:
        check_rejected_share(conn, run_id, 0.1)

    message = str(failure.value)
    assert "3 of 11 record(s) rejected" in message
    assert "file:///drop/a.csv: 2 of 10 rejected; file:///drop/b.csv: 1 of 1 rejected" in message
    assert f"WHERE run_id = {run_id}" in message


def test_before_publish_the_summary_counts_every_file_of_the_run(
    conn: psycopg.Connection, drop: tuple[int, SourceFile, SourceFile]
) -> None:
    run_id, _, _ = drop
    summary = summarize(conn, run_id)
    assert (summary.files, summary.rows, summary.rejects) == (2, 8, 3)


def test_a_file_a_later_run_replaced_is_not_counted_against_the_earlier_run(
    conn: psycopg.Connection, start: StartRun, drop: tuple[int, SourceFile, SourceFile]
) -> None:
    run_id, _, _ = drop
    publish(conn, run_id)
    changed = source("a.csv", fingerprint="v2", size=400)
    later = start("run-2", [changed])
    import_chunk(conn, later, whole(changed), good(2, 1))
    publish(conn, later)

    verify_run(conn, run_id)
    assert verify_run(conn, later).rows == 1
