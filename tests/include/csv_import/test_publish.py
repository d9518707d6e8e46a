"""Publishing a run's staged drop: one transaction, decided per file under lock, readers kept."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import psycopg
import pytest

from include.csv_import.importer import import_chunk
from include.csv_import.ledger import (
    Mode,
    read_files,
    read_plan,
    record_columns,
    record_files,
    record_plan,
    start_run,
)
from include.csv_import.model import Chunk, Column, ColumnType, Dialect, Row, SourceFile
from include.csv_import.publish import (
    ImportIncomplete,
    PublishResult,
    StagingMissing,
    discard_staging,
    publish,
)
from include.csv_import.table import create_staging, prepare_target
from include.csv_import.verify import check_rejected_share, verify_run
from include.csv_import.warehouse import staging_table
from tests.include.csv_import.conftest import COLUMNS, TARGET, StartRun, source, wait_until_blocked, whole

# Each file's rows have ids of their own: file n's are n*1000+2, n*1000+3, ...
FILE_NUMBERS = {"a.csv": 1, "b.csv": 2, "c.csv": 3, "shared.csv": 4, "own.csv": 5}


def rows_of(file: SourceFile, count: int) -> list[Row]:
    number = FILE_NUMBERS[file.url.rsplit("/", 1)[1]]
    return [
        Row(line, (str(number * 1000 + line), f"f{number}", "1.25", "2024-01-01"))
        for line in range(2, 2 + count)
    ]


def stage(
    conn: psycopg.Connection, start: StartRun, dag_run_id: str, files: dict[SourceFile, int], **kw
) -> int:
    """A run whose files are all imported."""
    run_id = start(dag_run_id, list(files), **kw)
    for file, count in files.items():
        import_chunk(conn, run_id, whole(file), rows_of(file, count))
    return run_id


def target_rows(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("SELECT id, name FROM landing.certificates ORDER BY id").fetchall()


def ids(file_number: int, count: int) -> list[int]:
    return [file_number * 1000 + line for line in range(2, 2 + count)]


def staging_exists(conn: psycopg.Connection, run_id: int) -> bool:
    name = staging_table(run_id).as_string(conn)
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]


def test_replace_swaps_the_drop_in_and_the_target_becomes_exactly_it(
    conn: psycopg.Connection, start: StartRun
) -> None:
    a, b, c = source("a.csv"), source("b.csv"), source("c.csv")
    first = stage(conn, start, "run-1", {a: 3, b: 2}, mode=Mode.REPLACE)
    publish(conn, first)

    second = stage(conn, start, "run-2", {c: 4}, mode=Mode.REPLACE)
    result = publish(conn, second)

    assert result.method == "swap"
    assert [i for i, _ in target_rows(conn)] == ids(3, 4)
    assert not staging_exists(conn, second)
    ledger = conn.execute("SELECT url, status FROM csv_import.files ORDER BY url").fetchall()
    assert ledger == [
        ("file:///drop/a.csv", "removed"),
        ("file:///drop/b.csv", "removed"),
        ("file:///drop/c.csv", "imported"),
    ]


def test_replace_keeps_views_and_grants_on_the_target_by_truncating_instead_of_swapping(
    conn: psycopg.Connection, admin: psycopg.Connection, start: StartRun
) -> None:
    a, b = source("a.csv"), source("b.csv")
    publish(conn, stage(conn, start, "run-1", {a: 3}, mode=Mode.REPLACE))
    admin.execute(
        "CREATE VIEW public.certificate_names AS SELECT id, name FROM landing.certificates;"
        "GRANT SELECT ON landing.certificates TO PUBLIC"
    )

    result = publish(conn, stage(conn, start, "run-2", {b: 2}, mode=Mode.REPLACE))

    assert result.method == "truncate_insert"
    assert "views or rules depend on it" in result.note
    assert admin.execute("SELECT id FROM public.certificate_names ORDER BY id").fetchall() == [
        (2002,),
        (2003,),
    ]
    grants = admin.execute(
        "SELECT grantee, privilege_type FROM information_schema.role_table_grants"
        " WHERE table_schema = 'landing' AND table_name = 'certificates' AND grantee = 'PUBLIC'"
    ).fetchall()
    assert grants == [("PUBLIC", "SELECT")]


def test_append_imports_only_the_files_not_imported_yet(conn: psycopg.Connection, start: StartRun) -> None:
    a, b, c = source("a.csv"), source("b.csv"), source("c.csv")
    assert publish(conn, stage(conn, start, "run-1", {a: 2, b: 2})).method == "swap"  # a new table

    result = publish(conn, stage(conn, start, "run-2", {b: 2, c: 3}))

    assert result.method == "insert_select"
    assert result.imported == ("file:///drop/c.csv",)
    assert list(result.skipped) == ["file:///drop/b.csv"]
    assert [i for i, _ in target_rows(conn)] == ids(1, 2) + ids(2, 2) + ids(3, 3)


def test_a_changed_file_replaces_exactly_its_own_rows(conn: psycopg.Connection, start: StartRun) -> None:
    a, b = source("a.csv"), source("b.csv")
    publish(conn, stage(conn, start, "run-1", {a: 3, b: 2}))

    changed = source("a.csv", fingerprint="v2")
    run_id = start("run-2", [changed])
    import_chunk(conn, run_id, whole(changed), [Row(2, ("7", "a again", "1", None))])
    result = publish(conn, run_id)

    assert result.replaced == ("file:///drop/a.csv",)
    assert target_rows(conn) == [(7, "a again"), *[(i, "f2") for i in ids(2, 2)]]
    assert conn.execute(
        "SELECT fingerprint, rows_imported FROM csv_import.files WHERE url = 'file:///drop/a.csv'"
    ).fetchone() == ("v2", 1)


def test_two_runs_publishing_the_same_file_at_once_import_it_once(
    conn: psycopg.Connection, importer_conninfo: str, admin: psycopg.Connection, start: StartRun
) -> None:
    shared, own = source("shared.csv"), source("own.csv")
    winner = stage(conn, start, "run-1", {shared: 3})
    loser = stage(conn, start, "run-2", {shared: 3, own: 2})
    results: dict[str, PublishResult | BaseException] = {}

    with (
        psycopg.connect(importer_conninfo, autocommit=True) as first,
        psycopg.connect(importer_conninfo, autocommit=True) as second,
    ):
        # The winner publishes inside a transaction held open, so it keeps its locks.
        with first.transaction():
            publish(first, winner)

            def publish_loser() -> None:
                try:
                    results["loser"] = publish(second, loser)
                except BaseException as error:  # handed to the test's thread
                    results["loser"] = error

            thread = threading.Thread(target=publish_loser)
            thread.start()
            wait_until_blocked(admin, second.info.backend_pid, thread)
        thread.join()

    result = results["loser"]
    assert isinstance(result, PublishResult), result
    assert list(result.skipped) == ["file:///drop/shared.csv"]
    assert result.imported == ("file:///drop/own.csv",)
    assert [i for i, _ in target_rows(conn)] == ids(4, 3) + ids(5, 2)
    outcomes = {f.file.name: f.outcome for f in read_files(conn, loser)}
    assert outcomes == {"file:///drop/own.csv": "imported", "file:///drop/shared.csv": "skipped"}


def test_a_failing_publish_leaves_the_target_and_the_ledger_as_they_were(
    conn: psycopg.Connection, admin: psycopg.Connection, start: StartRun
) -> None:
    a, b = source("a.csv"), source("b.csv")
    publish(conn, stage(conn, start, "run-1", {a: 2}))
    admin.execute(
        "CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'refused by a trigger'; END $$;"
        "CREATE TRIGGER refuse BEFORE INSERT ON landing.certificates"
        " FOR EACH ROW EXECUTE FUNCTION public.refuse()"
    )
    run_id = stage(conn, start, "run-2", {b: 2})

    with pytest.raises(psycopg.errors.RaiseException):
        publish(conn, run_id)

    assert [i for i, _ in target_rows(conn)] == ids(1, 2)
    assert [f.outcome for f in read_files(conn, run_id)] == [None]
    assert staging_exists(conn, run_id)
    admin.execute("DROP TRIGGER refuse ON landing.certificates")
    assert publish(conn, run_id).imported == ("file:///drop/b.csv",)
    assert [i for i, _ in target_rows(conn)] == ids(1, 2) + ids(2, 2)


def test_a_retried_publish_returns_what_the_first_recorded(conn: psycopg.Connection, start: StartRun) -> None:
    run_id = stage(conn, start, "run-1", {source("a.csv"): 2})
    first = publish(conn, run_id)
    again = publish(conn, run_id)

    assert (again.already_published, again.method, again.imported, again.rows) == (
        True,
        first.method,
        first.imported,
        2,
    )
    assert len(target_rows(conn)) == 2


def test_publish_refuses_a_run_whose_chunks_are_not_all_imported(
    conn: psycopg.Connection, start: StartRun
) -> None:
    a = source("a.csv")
    halves: Sequence[Chunk] = [Chunk(a, 0, 0, 500, 2), Chunk(a, 1, 500, None, 40)]
    run_id = start("run-1", [a], chunks=halves)
    import_chunk(conn, run_id, halves[0], rows_of(a, 3))

    with pytest.raises(ImportIncomplete, match=r"a\.csv \(1 of 2 chunk"):
        publish(conn, run_id)
    assert target_rows(conn) == []


def test_columns_another_run_added_meanwhile_are_kept_by_both_runs(
    conn: psycopg.Connection, start: StartRun
) -> None:
    a, b = source("a.csv"), source("b.csv")
    narrow = stage(conn, start, "run-1", {a: 2})
    # A second run brings a new column while the first is still staged without it.
    wider = start("run-2", [b], columns=(*COLUMNS, Column("rating", "Rating", ColumnType.TEXT)))
    import_chunk(conn, wider, whole(b), [Row(2, ("2002", "f2", "1", None, "B"))])

    assert publish(conn, narrow).method == "insert_select"
    publish(conn, wider)

    rows = conn.execute("SELECT id, rating FROM landing.certificates ORDER BY id").fetchall()
    assert rows == [(1002, None), (1003, None), (2002, "B")]


def test_a_run_given_up_on_leaves_no_staging_table_and_the_target_as_it_was(
    conn: psycopg.Connection, start: StartRun
) -> None:
    run_id = stage(conn, start, "run-1", {source("a.csv"): 2})

    assert discard_staging(conn, run_id)
    assert not staging_exists(conn, run_id)
    assert target_rows(conn) == []
    with pytest.raises(StagingMissing, match="clear the run's prepare and import tasks"):
        publish(conn, run_id)


def test_two_attempts_at_publishing_one_run_at_once_publish_it_once(
    conn: psycopg.Connection, importer_conninfo: str, admin: psycopg.Connection, start: StartRun
) -> None:
    run_id = stage(conn, start, "run-1", {source("a.csv"): 2})
    results: dict[str, PublishResult] = {}

    with (
        psycopg.connect(importer_conninfo, autocommit=True) as first,
        psycopg.connect(importer_conninfo, autocommit=True) as second,
    ):
        with first.transaction():
            results["first"] = publish(first, run_id)

            def retry() -> None:
                results["second"] = publish(second, run_id)

            thread = threading.Thread(target=retry)
            thread.start()
            wait_until_blocked(admin, second.info.backend_pid, thread)
        thread.join()

    assert (results["first"].already_published, results["second"].already_published) == (False, True)
    assert len(target_rows(conn)) == 2


def test_every_step_commits_its_own_work_on_a_connection_outside_autocommit(
    importer_conninfo: str, conn: psycopg.Connection
) -> None:
    """The tasks open connections as include.common.postgres.connect does: not in autocommit."""
    a = source("a.csv")
    with psycopg.connect(importer_conninfo) as task_conn:
        run_id = start_run(task_conn, dag_run_id="run-1", target=TARGET, mode=Mode.APPEND, source="x").id
        steps = [
            lambda: record_columns(task_conn, run_id, COLUMNS),
            lambda: record_files(task_conn, run_id, [(a, Dialect(), [c.name for c in COLUMNS])]),
            lambda: record_plan(task_conn, run_id, [whole(a)]),
            lambda: read_plan(task_conn, run_id),
            lambda: prepare_target(task_conn, TARGET, COLUMNS),
            lambda: create_staging(task_conn, run_id, TARGET),
            lambda: import_chunk(task_conn, run_id, whole(a), rows_of(a, 3)),
            lambda: check_rejected_share(task_conn, run_id, 0.1),
            lambda: publish(task_conn, run_id),
            lambda: verify_run(task_conn, run_id),
        ]
        for step in steps:
            step()
            assert task_conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        # Seen from another session: everything committed.
        assert len(target_rows(conn)) == 3
