"""Importing a chunk into its run's staging table, against real PostgreSQL as the importer's role."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator, Sequence
from functools import partial

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings

from include.csv_import.importer import import_chunk
from include.csv_import.ledger import read_plan
from include.csv_import.model import Chunk, Column, Dialect, FileSchema, Reject, RejectReason, Row
from include.csv_import.plain import BLOCK_BYTES, PlainRecords, read_chunk_plain
from include.csv_import.reader import read_chunk
from include.csv_import.table import TableName
from include.csv_import.warehouse import staging_table
from tests.include.csv_import.conftest import (
    COLUMNS,
    IMPORTER_ROLE,
    TARGET,
    StartRun,
    source,
    wait_until_blocked,
    whole,
)
from tests.include.csv_import.test_reading_properties import csv_files


def rows(count: int, *, first_line: int = 2) -> list[Row]:
    return [
        Row(line, (str(line), f"name {line}", f"{line}.50", "2024-03-01"))
        for line in range(first_line, first_line + count)
    ]


def staged(conn: psycopg.Connection, run_id: int) -> list[tuple]:
    query = psycopg.sql.SQL("SELECT _source_line, id, name, amount::text FROM {} ORDER BY _source_line")
    return conn.execute(query.format(staging_table(run_id))).fetchall()


def stored_rejects(conn: psycopg.Connection, run_id: int) -> list[tuple]:
    return conn.execute(
        "SELECT line, column_name, reason, detail FROM csv_import.rejects WHERE run_id = %s ORDER BY line",
        (run_id,),
    ).fetchall()


def test_a_retried_chunk_is_staged_once(conn: psycopg.Connection, start: StartRun) -> None:
    file = source("a.csv")
    run_id = start("run-1", [file])
    items = [*rows(3), Reject(5, RejectReason.WRONG_FIELD_COUNT, None, "1,2", "expected 4 fields, found 2")]

    first = import_chunk(conn, run_id, whole(file), items)
    second = import_chunk(conn, run_id, whole(file), iter(()))

    assert (first.rows, first.rejects, first.skipped) == (3, 1, False)
    assert (second.rows, second.rejects, second.skipped) == (3, 1, True)
    assert [line for line, *_ in staged(conn, run_id)] == [2, 3, 4]
    assert len(stored_rejects(conn, run_id)) == 1
    assert [p.done for p in read_plan(conn, run_id)] == [True]


def test_a_chunk_of_a_changed_file_replaces_exactly_its_own_staged_rows(
    conn: psycopg.Connection, start: StartRun
) -> None:
    file = source("a.csv")
    first_half, second_half = Chunk(file, 0, 0, 500, 2), Chunk(file, 1, 500, None, 12)
    run_id = start("run-1", [file], chunks=[first_half, second_half])
    import_chunk(conn, run_id, first_half, rows(10))
    import_chunk(conn, run_id, second_half, rows(10, first_line=12))

    changed = Chunk(source("a.csv", fingerprint="v2"), 0, 0, 500, 2)
    result = import_chunk(
        conn, run_id, changed, [*rows(4), Reject(6, RejectReason.TYPE_MISMATCH, "id", "x", "d")]
    )

    assert (result.rows, result.rejects, result.skipped) == (4, 1, False)
    assert [line for line, *_ in staged(conn, run_id)] == [2, 3, 4, 5, *range(12, 22)]


def test_a_killed_import_leaves_nothing_and_its_retry_stages_everything(
    conn: psycopg.Connection, importer_conninfo: str, admin: psycopg.Connection, start: StartRun
) -> None:
    file = source("a.csv")
    run_id = start("run-1", [file])

    with psycopg.connect(importer_conninfo, autocommit=True) as victim:
        pid = victim.info.backend_pid

        def items() -> Iterator[Row]:
            # More than one batch: the first is already in the server when the backend dies.
            yield from rows(30_000)
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            yield from rows(10, first_line=30_002)

        with pytest.raises(psycopg.OperationalError):
            import_chunk(victim, run_id, whole(file), items())

    assert staged(conn, run_id) == []
    assert [p.done for p in read_plan(conn, run_id)] == [False]
    retried = import_chunk(conn, run_id, whole(file), [*rows(30_000), *rows(10, first_line=30_002)])
    assert (retried.rows, retried.skipped) == (30_010, False)
    assert len(staged(conn, run_id)) == 30_010


def test_a_value_postgresql_refuses_is_rejected_with_its_message_and_the_rest_is_staged(
    conn: psycopg.Connection, start: StartRun
) -> None:
    file = source("a.csv")
    run_id = start("run-1", [file])
    good = rows(50)
    # Python's checks passed them; PostgreSQL does not take them: out of integer range, 30 February.
    too_big = Row(60, ("2147483648", "big", "1", "2024-03-01"))
    no_such_day = Row(61, ("7", "leap", "1", "2023-02-30"))
    items = [*good[:20], too_big, *good[20:40], no_such_day, *good[40:]]

    result = import_chunk(conn, run_id, whole(file), items)

    assert (result.rows, result.rejects, result.refused) == (50, 2, 2)
    assert len(staged(conn, run_id)) == 50
    rejects = stored_rejects(conn, run_id)
    assert [(line, column, reason) for line, column, reason, _ in rejects] == [
        (60, "id", "type_mismatch"),
        (61, "issued", "type_mismatch"),
    ]
    assert "out of range for type integer" in rejects[0][3]
    assert "date/time field value out of range" in rejects[1][3]


def test_a_batch_postgresql_refuses_entirely_is_rejected_line_by_line(
    conn: psycopg.Connection, start: StartRun
) -> None:
    file = source("a.csv")
    run_id = start("run-1", [file])
    refused = [Row(line, ("99999999999", "x", "1", "2024-01-01")) for line in range(2, 302)]

    result = import_chunk(conn, run_id, whole(file), [*refused, *rows(5, first_line=302)])

    assert (result.rows, result.refused) == (5, 300)
    assert len(stored_rejects(conn, run_id)) == 300


def test_text_postgresql_cannot_store_is_rejected_not_fatal(
    conn: psycopg.Connection, start: StartRun
) -> None:
    file = source("a.csv")
    run_id = start("run-1", [file])

    result = import_chunk(conn, run_id, whole(file), [*rows(3), Row(9, ("1", "nul\x00byte", "1", None))])

    assert (result.rows, result.refused) == (3, 1)
    assert stored_rejects(conn, run_id)[0][:3] == (9, None, "type_mismatch")


def test_two_attempts_at_one_chunk_at_once_stage_it_once(
    conn: psycopg.Connection, importer_conninfo: str, admin: psycopg.Connection, start: StartRun
) -> None:
    file = source("a.csv")
    run_id = start("run-1", [file])
    results = {}

    with (
        psycopg.connect(importer_conninfo, autocommit=True) as first,
        psycopg.connect(importer_conninfo, autocommit=True) as second,
    ):
        # The first attempt holds its transaction open: the second must wait for it, then skip.
        with first.transaction():
            results["first"] = import_chunk(first, run_id, whole(file), rows(5))

            def retry() -> None:
                results["second"] = import_chunk(second, run_id, whole(file), rows(5))

            thread = threading.Thread(target=retry)
            thread.start()
            wait_until_blocked(admin, second.info.backend_pid, thread)
        thread.join()

    assert (results["first"].skipped, results["second"].skipped) == (False, True)
    assert len(staged(conn, run_id)) == 5


def test_a_null_in_a_not_null_column_of_the_target_is_rejected_naming_the_column(
    conn: psycopg.Connection, admin: psycopg.Connection, start: StartRun
) -> None:
    admin.execute(
        "CREATE TABLE landing.certificates (id integer, name text NOT NULL, amount numeric, issued date);"
        f"ALTER TABLE landing.certificates OWNER TO {IMPORTER_ROLE}"
    )
    file = source("a.csv")
    run_id = start("run-1", [file])

    result = import_chunk(conn, run_id, whole(file), [*rows(2), Row(4, ("3", None, "1", None))])

    assert (result.rows, result.refused) == (2, 1)
    line, column, reason, detail = stored_rejects(conn, run_id)[0]
    assert (line, column, reason) == (4, "name", "type_mismatch")
    assert "not-null constraint" in detail


# --- plain records: the same rows and rejects as the careful reader, through PostgreSQL ----------


def everything_staged(conn: psycopg.Connection, run_id: int, columns: Sequence[Column]) -> list[tuple]:
    query = psycopg.sql.SQL("SELECT _source_line, {} FROM {} ORDER BY _source_line").format(
        psycopg.sql.SQL(", ").join(
            psycopg.sql.SQL("{}::text").format(psycopg.sql.Identifier(c.name)) for c in columns
        ),
        staging_table(run_id),
    )
    return conn.execute(query).fetchall()


def every_reject(conn: psycopg.Connection, run_id: int) -> list[tuple]:
    return conn.execute(
        "SELECT line, column_name, reason, raw, detail FROM csv_import.rejects"
        " WHERE run_id = %s ORDER BY line",
        (run_id,),
    ).fetchall()


def import_both_ways(
    conn: psycopg.Connection,
    start: StartRun,
    data: bytes,
    schema: FileSchema,
    target: TableName = TARGET,
    block_bytes: int = BLOCK_BYTES,
) -> tuple[int, int]:
    """Import ``data`` read carefully (run 1) and with plain records (run 2); the two runs' ids."""
    chunk = Chunk(schema.file, 0, 0, None, 1)
    results = []
    for way, read in (("careful", read_chunk), ("plain", partial(read_chunk_plain, block_bytes=block_bytes))):
        run_id = start(
            f"{way}-{target.name}",
            [schema.file],
            columns=schema.columns,
            target=target,
            dialect=schema.dialect,
        )
        result = import_chunk(conn, run_id, chunk, read(io.BytesIO(data), chunk, schema))
        results.append((run_id, result))
    (careful_run, careful), (plain_run, plain) = results
    assert (plain.rows, plain.rejects, plain.refused) == (careful.rows, careful.rejects, careful.refused)
    assert everything_staged(conn, plain_run, schema.columns) == everything_staged(
        conn, careful_run, schema.columns
    )
    assert every_reject(conn, plain_run) == every_reject(conn, careful_run)
    return careful_run, plain_run


def test_plain_records_are_staged_exactly_as_the_careful_reader_stages_them(
    conn: psycopg.Connection, start: StartRun
) -> None:
    data = (
        'id,name,amount,issued\r\n1,"Smith, J",12.50,2024-01-31\r\n2,"say ""hi""\r\non two lines",,\r\n'
        '3,"",-0.001,2024-02-29\r\n4,Zoë — café,7,2024-03-01\r\n 5 ,trimmed,1,2024-03-02\r\n6,too,few\r\n'
        "\r\n7,last,0,2024-03-03"
    ).encode()
    schema = FileSchema(source("a.csv", size=len(data)), Dialect(), COLUMNS)

    careful_run, _ = import_both_ways(conn, start, data, schema)

    assert [line for line, *_ in everything_staged(conn, careful_run, COLUMNS)] == [2, 3, 5, 6, 7, 10]


@pytest.mark.parametrize(
    ("records", "block_bytes"),
    [
        pytest.param(50, BLOCK_BYTES, id="one block"),
        # Small blocks, so that many go to one COPY: every record of the statement is read again.
        pytest.param(2000, 4096, id="the last of many blocks copied together"),
    ],
)
def test_a_block_postgresql_refuses_is_read_again_carefully_and_only_the_refused_line_is_rejected(
    conn: psycopg.Connection, start: StartRun, records: int, block_bytes: int
) -> None:
    # 2023-02-30 has the shape of a date, so the record is plain; only PostgreSQL can refuse it.
    lines = [f"{n},name {n},{n}.5,2024-03-01" for n in range(1, records)] + [f"{records},leap,1,2023-02-30"]
    data = ("id,name,amount,issued\n" + "\n".join(lines) + "\n").encode()
    schema = FileSchema(source("a.csv", size=len(data)), Dialect(), COLUMNS)
    chunk = Chunk(schema.file, 0, 0, None, 1)
    items = list(read_chunk_plain(io.BytesIO(data), chunk, schema, block_bytes=block_bytes))
    assert sum(item.rows for item in items if isinstance(item, PlainRecords)) == records

    _, plain_run = import_both_ways(conn, start, data, schema, block_bytes=block_bytes)

    assert len(everything_staged(conn, plain_run, COLUMNS)) == records - 1
    ((line, column, reason, _, detail),) = every_reject(conn, plain_run)
    assert (line, column, reason) == (records + 1, "issued", "type_mismatch")
    assert "2023-02-30" in detail


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(csv_files())
def test_postgresql_reads_plain_records_as_the_careful_reader_reads_them_whatever_the_file(
    conn: psycopg.Connection, start: StartRun, generated: tuple[bytes, FileSchema, list]
) -> None:
    data, schema, _ = generated
    target = TableName(
        TARGET.schema, "generated_" + hashlib.sha256(data + repr(schema).encode()).hexdigest()[:12]
    )
    if conn.execute("SELECT to_regclass(%s)", (f"{target.schema}.{target.name}",)).fetchone()[0]:
        return  # hypothesis replays an example it has seen: its runs exist already
    import_both_ways(
        conn, start, data, FileSchema(source("a.csv", size=len(data)), schema.dialect, schema.columns), target
    )
