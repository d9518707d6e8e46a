"""The target's name and columns come from users: parsed safely, created, extended, never lost."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from include.csv_import.importer import import_chunk
from include.csv_import.ledger import Mode
from include.csv_import.model import Column, ColumnType, Row
from include.csv_import.publish import publish
from include.csv_import.table import (
    IncompatibleTarget,
    InvalidTableName,
    TableName,
    parse_table_name,
    prepare_target,
)
from tests.include.csv_import.conftest import COLUMNS, IMPORTER_ROLE, TARGET, StartRun, source, whole


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("landing.certificates", TableName("landing", "certificates")),
        ("Landing.Certificates", TableName("landing", "certificates")),
        ('"Energy"."Certificates 2024"', TableName("Energy", "Certificates 2024")),
        ('landing."odd.name ""quoted"""', TableName("landing", 'odd.name "quoted"')),
        ('landing."x; DROP TABLE students; --"', TableName("landing", "x; DROP TABLE students; --")),
    ],
)
def test_a_table_name_is_read_as_postgresql_reads_it(text: str, expected: TableName) -> None:
    assert parse_table_name(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "certificates",
        "a.b.c",
        "landing.x; DROP TABLE students",
        'landing."unterminated',
        "landing.",
        'landing.""',
        "pg_catalog.pg_class",
        "csv_import.files",
        "landing." + "x" * 64,
    ],
)
def test_a_table_name_that_is_not_schema_dot_table_is_refused_with_how_to_write_it(text: str) -> None:
    with pytest.raises(InvalidTableName, match="table"):
        parse_table_name(text)


HOSTILE_TABLE = TableName("landing", 'Robert"); DROP TABLE students; --')
HOSTILE_COLUMNS = (
    Column('a"b', 'a"b', ColumnType.INTEGER),
    Column("select", "select", ColumnType.TEXT),
    Column("x); DROP TABLE y; --", "x); DROP TABLE y; --", ColumnType.DATE),
    Column("Größe", "Größe", ColumnType.NUMERIC),
)


def test_hostile_names_become_exactly_those_identifiers(conn: psycopg.Connection, start: StartRun) -> None:
    file = source("hostile.csv")
    run_id = start("run-1", [file], target=HOSTILE_TABLE, columns=HOSTILE_COLUMNS)
    import_chunk(conn, run_id, whole(file), [Row(2, ("1", "drop", "2024-01-31", "1.5"))])
    publish(conn, run_id)

    columns = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 ORDER BY attnum",
        (HOSTILE_TABLE.identifier.as_string(conn),),
    ).fetchall()
    assert [c for (c,) in columns] == [c.name for c in HOSTILE_COLUMNS] + ["_source_file_id", "_source_line"]
    row = conn.execute(sql.SQL("SELECT {} FROM {}").format(sql.Identifier("Größe"), HOSTILE_TABLE.identifier))
    assert row.fetchone()[0] == 1.5
    tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'landing'").fetchone()[0]
    assert tables == 1


def test_a_later_drop_with_a_new_column_adds_it_and_keeps_the_rows(
    conn: psycopg.Connection, start: StartRun
) -> None:
    first = source("q1.csv")
    run_id = start("run-1", [first])
    import_chunk(conn, run_id, whole(first), [Row(2, ("1", "one", "1", "2024-01-01"))])
    publish(conn, run_id)

    wider = (*COLUMNS, Column("rating", "Rating", ColumnType.TEXT))
    second = source("q2.csv")
    run_id = start("run-2", [second], columns=wider)
    import_chunk(conn, run_id, whole(second), [Row(2, ("2", "two", "2", "2024-04-01", "B"))])
    publish(conn, run_id)

    table = conn.execute(
        sql.SQL("SELECT id, rating FROM {} ORDER BY id").format(TARGET.identifier)
    ).fetchall()
    assert table == [(1, None), (2, "B")]


def test_a_users_column_and_its_type_are_never_dropped_or_changed(
    conn: psycopg.Connection, admin: psycopg.Connection, start: StartRun
) -> None:
    # The table was there first: a person made it, with a narrower id and a column of their own.
    admin.execute(
        "CREATE TABLE landing.certificates (id smallint, name text, notes text DEFAULT 'kept');"
        "INSERT INTO landing.certificates (id, name, notes) VALUES (1, 'theirs', 'mine');"
        f"ALTER TABLE landing.certificates OWNER TO {IMPORTER_ROLE}"
    )
    prepared = prepare_target(conn, TARGET, COLUMNS)
    assert prepared.added == ("amount", "issued")
    assert [(k.column, k.target_type, k.inferred_type) for k in prepared.kept] == [
        ("id", "smallint", "integer")
    ]
    assert prepared.unfilled == ("notes",)

    file = source("a.csv")
    run_id = start("run-1", [file], mode=Mode.REPLACE)
    result = import_chunk(
        conn,
        run_id,
        whole(file),
        [Row(2, ("2", "new", "1", "2024-01-01")), Row(3, ("40000", "x", "1", None))],
    )
    publish(conn, run_id)

    assert (result.rows, result.refused) == (1, 1)
    columns = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = 'landing' AND table_name = 'certificates' ORDER BY ordinal_position"
    ).fetchall()
    assert columns[:3] == [("id", "smallint"), ("name", "text"), ("notes", "text")]
    rows = conn.execute("SELECT id, name, notes FROM landing.certificates").fetchall()
    assert rows == [(2, "new", "kept")]


def test_a_table_the_importer_may_not_alter_is_refused_with_the_grant_to_ask_for(
    conn: psycopg.Connection, admin: psycopg.Connection
) -> None:
    admin.execute(
        "CREATE TABLE landing.certificates (id integer); GRANT SELECT ON landing.certificates TO PUBLIC"
    )
    with pytest.raises(IncompatibleTarget, match=f"OWNER TO {IMPORTER_ROLE}"):
        prepare_target(conn, TARGET, COLUMNS)


def test_a_header_named_like_a_lineage_column_is_refused(conn: psycopg.Connection) -> None:
    columns = (*COLUMNS, Column("_source_line", "_source_line", ColumnType.INTEGER))
    with pytest.raises(IncompatibleTarget, match="_source_line"):
        prepare_target(conn, TARGET, columns)


def test_a_missing_schema_is_created_when_the_role_may_and_named_with_the_grant_when_not(
    conn: psycopg.Connection, admin: psycopg.Connection
) -> None:
    with pytest.raises(IncompatibleTarget, match="GRANT USAGE, CREATE ON SCHEMA"):
        prepare_target(conn, TableName("energy", "certificates"), COLUMNS)

    admin.execute(
        sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
            sql.Identifier(admin.info.dbname), sql.Identifier(IMPORTER_ROLE)
        )
    )
    assert prepare_target(conn, TableName("energy", "certificates"), COLUMNS).created
    assert conn.execute(
        "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'energy'"
    ).fetchone() == (IMPORTER_ROLE,)
