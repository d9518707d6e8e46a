"""How a run's stages hand it over through csv_import's tables: written once, read back whole."""

from __future__ import annotations

import psycopg
import pytest

from include.csv_import.importer import import_chunk
from include.csv_import.ledger import (
    Mode,
    already_imported,
    read_columns,
    read_files,
    read_plan,
    read_run,
    record_columns,
    record_files,
    record_plan,
    start_run,
)
from include.csv_import.model import Chunk, Dialect, Row, SourceFile
from include.csv_import.publish import publish
from tests.include.csv_import.conftest import COLUMNS, TARGET, StartRun, source, whole

ZIPPED = SourceFile("file:///drop/q1.zip", "q1/certificates.csv", 5000, "etag-1:crc-2")


def test_a_retried_run_finds_its_ledger_row_again(conn: psycopg.Connection) -> None:
    first = start_run(conn, dag_run_id="manual__1", target=TARGET, mode=Mode.REPLACE, source="s3://b/p")
    again = start_run(conn, dag_run_id="manual__1", target=TARGET, mode=Mode.REPLACE, source="s3://b/p")
    other = start_run(conn, dag_run_id="manual__2", target=TARGET, mode=Mode.APPEND, source="s3://b/p")

    assert first.id == again.id != other.id
    assert read_run(conn, first.id) == first
    assert (first.target, first.mode, first.published_at) == (TARGET, Mode.REPLACE, None)


def test_the_schema_files_and_plan_read_back_as_they_were_recorded(conn: psycopg.Connection) -> None:
    run_id = start_run(conn, dag_run_id="r", target=TARGET, mode=Mode.APPEND, source="file:///drop").id
    plain = source("a.csv", size=3000)
    semicolons = Dialect(delimiter=";", quotechar="'", encoding="cp1252", header=False)
    record_columns(conn, run_id, COLUMNS)
    ids = record_files(
        conn, run_id, [(plain, Dialect(), ["id", "name"]), (ZIPPED, semicolons, ["name", "id", "issued"])]
    )
    chunks = [Chunk(plain, 0, 10, 1500, 2), Chunk(plain, 1, 1500, None, 80), Chunk(ZIPPED, 0, 0, None, 1)]
    record_plan(conn, run_id, chunks, {ZIPPED: "a zip member cannot be read from an offset"})

    assert read_columns(conn, run_id) == list(COLUMNS)
    files = {f.file: f for f in read_files(conn, run_id)}
    assert (files[plain].id, files[plain].columns, files[plain].whole_file_reason) == (
        ids[plain],
        ("id", "name"),
        None,
    )
    assert (files[ZIPPED].dialect, files[ZIPPED].whole_file_reason) == (
        semicolons,
        "a zip member cannot be read from an offset",
    )
    assert [(p.chunk, p.done) for p in read_plan(conn, run_id)] == [(c, False) for c in chunks]
    # Discovery retried after planning: the plan's reason stays.
    record_files(conn, run_id, [(ZIPPED, semicolons, ["name", "id", "issued"])])
    assert {f.file: f.whole_file_reason for f in read_files(conn, run_id)}[ZIPPED] is not None


def test_a_file_keeps_its_ledger_id_across_runs_of_one_target(conn: psycopg.Connection) -> None:
    runs = [
        start_run(conn, dag_run_id=f"r{i}", target=TARGET, mode=Mode.APPEND, source="x").id for i in (1, 2)
    ]
    first, second = (record_files(conn, r, [(ZIPPED, Dialect(), ["id"])])[ZIPPED] for r in runs)
    assert first == second


def test_a_plan_for_a_file_not_recorded_names_what_to_do_first(conn: psycopg.Connection) -> None:
    run_id = start_run(conn, dag_run_id="r", target=TARGET, mode=Mode.APPEND, source="x").id
    with pytest.raises(LookupError, match="record the run's files before its plan"):
        record_plan(conn, run_id, [whole(source("a.csv"))])


def test_already_imported_names_the_files_whose_content_the_target_holds(
    conn: psycopg.Connection, start: StartRun
) -> None:
    a, b = source("a.csv"), source("b.csv")
    run_id = start("run-1", [a, b])
    for file in (a, b):
        import_chunk(conn, run_id, whole(file), [Row(2, ("1", "x", "1", None))])
    publish(conn, run_id)

    changed_b = source("b.csv", fingerprint="v2")
    assert already_imported(conn, TARGET, [a, changed_b, source("c.csv")]) == {a}
