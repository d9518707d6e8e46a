"""The target table and a run's staging table: names from a user, made safe; columns added, never lost.

The target is named by whoever triggers the run (``warehouse.energy_certificates``), and its
columns come from CSV headers: both are user text. Names are parsed and checked here once, and
from then on only ever reach SQL through :class:`psycopg.sql.Identifier`.

Preparing a target never destroys anything a person made: a missing table is created, missing
columns are added, and a column that exists keeps its type even when inference found a wider one
(the target's type wins; values that do not fit it are rejected by PostgreSQL during the import,
each with its message, and counted). Columns the drop does not fill stay, NULL (or their default)
in the imported rows.

The staging table of a run is a LOGGED table in the pipeline's own schema. Unlogged would skip
WAL, but PostgreSQL empties unlogged tables after a crash, while the chunk ledger (logged) would
still say its chunks were done: the run would publish a drop with rows silently missing. And a
staging table swapped in as the target must be logged anyway (``SET LOGGED`` rewrites the whole
table, which costs the WAL saved). Measured on 1M rows of 15 columns, logged staging took
6.3 s where unlogged took 4.6 s (``python -m bench.csv_import_copy``): the price of a drop that
survives a crash.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from include.common.failures import ConfigurationError
from include.common.postgres import lock_resource
from include.csv_import.identifiers import LINEAGE_COLUMNS, MAX_IDENTIFIER_BYTES
from include.csv_import.model import Column, ColumnType
from include.csv_import.warehouse import SCHEMA, staging_table
from include.csv_import.warehouse import sql as query

log = logging.getLogger(__name__)

_UNQUOTED = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
# Schemas a run may never write into: the catalog, and the pipeline's own ledgers.
_RESERVED_SCHEMAS = ("pg_catalog", "information_schema", SCHEMA)

# Each type by its catalog name, so that DDL names it as a quoted identifier ("pg_catalog"."int4")
# and never as spliced text; and as format_type() prints it, to compare with an existing column.
_CATALOG_TYPES = {
    ColumnType.BOOLEAN: ("bool", "boolean"),
    ColumnType.INTEGER: ("int4", "integer"),
    ColumnType.BIGINT: ("int8", "bigint"),
    ColumnType.NUMERIC: ("numeric", "numeric"),
    ColumnType.DATE: ("date", "date"),
    ColumnType.TIMESTAMP: ("timestamp", "timestamp without time zone"),
    ColumnType.TIMESTAMPTZ: ("timestamptz", "timestamp with time zone"),
    ColumnType.TEXT: ("text", "text"),
}
_LINEAGE_TYPE = ColumnType.BIGINT


class InvalidTableName(ConfigurationError):
    """The ``table`` param is not a valid schema-qualified table name."""


class IncompatibleTarget(ConfigurationError):
    """The existing target cannot take the drop without someone changing it first."""


@dataclass(frozen=True, slots=True)
class TableName:
    """A schema-qualified table name, as PostgreSQL stores it (case and all)."""

    schema: str
    name: str

    @property
    def identifier(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    def __str__(self) -> str:
        # For messages and logs only: quoted the way psql would show it.
        return ".".join(_display(part) for part in (self.schema, self.name))


def parse_table_name(text: str) -> TableName:
    """``schema.table`` (each part plain, folded to lower case as PostgreSQL does, or "quoted")."""
    parts = _split_identifiers(text.strip())
    if parts is None or len(parts) != 2:
        raise InvalidTableName(
            f"table {text!r} is not a schema-qualified table name: write schema.table "
            '(double-quote a part that has capitals, spaces or dots: "Energy"."Certificates 2024")'
        )
    schema, name = parts
    for part in parts:
        if not part or "\x00" in part or len(part.encode()) > MAX_IDENTIFIER_BYTES:
            raise InvalidTableName(
                f"table {text!r}: every part must be 1 to {MAX_IDENTIFIER_BYTES} bytes, without NUL"
            )
    if schema in _RESERVED_SCHEMAS or schema.startswith("pg_"):
        raise InvalidTableName(
            f"table {text!r}: schema {schema} is reserved; import into a schema of your own"
        )
    return TableName(schema, name)


def _split_identifiers(text: str) -> list[str] | None:
    parts: list[str] = []
    position = 0
    while True:
        if text.startswith('"', position):
            # A quoted part ends at a lone quote; a doubled quote stands for one.
            end = position + 1
            value = []
            while True:
                quote = text.find('"', end)
                if quote < 0:
                    return None
                value.append(text[end:quote])
                if text.startswith('"', quote + 1):
                    value.append('"')
                    end = quote + 2
                    continue
                break
            parts.append("".join(value))
            position = quote + 1
        else:
            match = _UNQUOTED.match(text, position)
            if match is None:
                return None
            parts.append(match.group().lower())
            position = match.end()
        if position == len(text):
            return parts
        if text[position] != ".":
            return None
        position += 1


def _display(part: str) -> str:
    if _UNQUOTED.fullmatch(part) and part == part.lower():
        return part
    return '"' + part.replace('"', '""') + '"'


@dataclass(frozen=True, slots=True)
class TypeKept:
    """A column the target already has with another type than inference chose: the target's wins."""

    column: str
    target_type: str
    inferred_type: str


@dataclass(frozen=True, slots=True)
class PreparedTarget:
    table: TableName
    created: bool
    added: tuple[str, ...]
    kept: tuple[TypeKept, ...]
    # Target columns the drop does not fill: imported rows get their default, or NULL.
    unfilled: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ExistingColumn:
    name: str
    type: str
    not_null: bool
    has_default: bool
    # Identity or generated: PostgreSQL fills it, an INSERT must leave it out.
    generated: bool


def prepare_target(conn: psycopg.Connection, table: TableName, columns: Sequence[Column]) -> PreparedTarget:
    """Create the target, or add the columns it lacks, in one transaction; never drop or retype.

    An existing target must belong to the importer's role (or a role it is a member of): adding
    columns, truncating it for a replace and swapping a new drop in are its owner's to do.
    """
    _check_columns(columns)
    with conn.transaction(), conn.cursor() as cursor:
        # Two runs preparing one target at once would both find it missing and both create it.
        lock_resource(cursor, f"csv_import.prepare:{table.schema}.{table.name}")
        existing = {c.name: c for c in target_columns(cursor, table)}
        if not existing:
            return _create(cursor, table, columns)
        may_alter, owner = cursor.execute(
            query("select_table_owner"), {"table": table.identifier.as_string(cursor)}
        ).fetchone()
        if not may_alter:
            role = cursor.execute("SELECT current_user").fetchone()[0]
            raise IncompatibleTarget(
                f"{table} belongs to role {owner}, and the importer's role {role} may not alter it: ask its "
                f"owner to run ALTER TABLE {table.identifier.as_string(cursor)} OWNER TO {role} "
                f"(or GRANT {owner} TO {role}), or import into another table"
            )
        for name in LINEAGE_COLUMNS:
            if name in existing and existing[name].type != _shown(_LINEAGE_TYPE):
                raise IncompatibleTarget(
                    f"{table}.{name} is {existing[name].type}, but the import's lineage column must be "
                    f"bigint: rename or drop that column of {table}, or import into another table"
                )
        missing = [c for c in columns if c.name not in existing]
        additions = [(c.name, c.type) for c in missing]
        additions += [(name, _LINEAGE_TYPE) for name in LINEAGE_COLUMNS if name not in existing]
        if additions:
            # A nullable column without a default changes only the catalog: no rewrite.
            cursor.execute(
                sql.SQL("ALTER TABLE {} {}").format(
                    sql.Identifier(table.schema, table.name),
                    sql.SQL(", ").join(
                        sql.SQL("ADD COLUMN {} {}").format(
                            sql.Identifier(name), sql.Identifier(*_catalog(type_))
                        )
                        for name, type_ in additions
                    ),
                )
            )
        kept = tuple(
            TypeKept(c.name, existing[c.name].type, _shown(c.type))
            for c in columns
            if c.name in existing and existing[c.name].type != _shown(c.type)
        )
        for k in kept:
            log.warning(
                "%s.%s stays %s (inference found %s): values that do not fit %s will be rejected",
                table,
                k.column,
                k.target_type,
                k.inferred_type,
                k.target_type,
            )
        drop = {c.name for c in columns} | set(LINEAGE_COLUMNS)
        unfilled = tuple(name for name in existing if name not in drop)
        required = [
            name
            for name in unfilled
            if existing[name].not_null and not existing[name].has_default and not existing[name].generated
        ]
        if required:
            raise IncompatibleTarget(
                f"{table} has NOT NULL column(s) without a default that the files do not fill: "
                f"{', '.join(required)}; every row would be refused. Give them a default, drop NOT NULL, "
                "or add them to the files"
            )
        if missing:
            log.info("added %d column(s) to %s: %s", len(missing), table, ", ".join(c.name for c in missing))
        return PreparedTarget(table, False, tuple(c.name for c in missing), kept, unfilled)


def table_exists(conn: psycopg.Connection, table: TableName) -> bool:
    with conn.transaction(), conn.cursor() as cursor:
        return bool(target_columns(cursor, table))


def _catalog(type_: ColumnType) -> tuple[str, str]:
    return "pg_catalog", _CATALOG_TYPES[type_][0]


def _shown(type_: ColumnType) -> str:
    return _CATALOG_TYPES[type_][1]


def _create(cursor: psycopg.Cursor, table: TableName, columns: Sequence[Column]) -> PreparedTarget:
    definitions = [(c.name, c.type) for c in columns]
    definitions += [(name, _LINEAGE_TYPE) for name in LINEAGE_COLUMNS]
    try:
        with cursor.connection.transaction():
            # Look first: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the
            # schema exists (see include/common/migrations.py), which a DBA may rightly withhold.
            if cursor.execute(query("select_schema_exists"), {"schema": table.schema}).fetchone() is None:
                cursor.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(table.schema)))
                log.info("created schema %s", sql.Identifier(table.schema).as_string(cursor))
            cursor.execute(
                sql.SQL("CREATE TABLE {} ({})").format(
                    sql.Identifier(table.schema, table.name),
                    sql.SQL(", ").join(
                        sql.SQL("{} {}").format(sql.Identifier(name), sql.Identifier(*_catalog(type_)))
                        for name, type_ in definitions
                    ),
                )
            )
    except (psycopg.errors.InsufficientPrivilege, psycopg.errors.InvalidSchemaName) as error:
        role = cursor.execute("SELECT current_user").fetchone()[0]
        schema = sql.Identifier(table.schema).as_string(cursor)
        raise IncompatibleTarget(
            f"cannot create {table}: {error.diag.message_primary}. Ask a DBA to run "
            f"GRANT USAGE, CREATE ON SCHEMA {schema} TO {role} (creating the schema first if it is missing)"
        ) from None
    log.info("created %s with %d columns and the lineage columns", table, len(columns))
    return PreparedTarget(table, True, tuple(c.name for c in columns), (), ())


def _check_columns(columns: Sequence[Column]) -> None:
    names = [c.name for c in columns]
    clashes = sorted({n for n in names if names.count(n) > 1} | (set(names) & set(LINEAGE_COLUMNS)))
    if clashes:
        raise IncompatibleTarget(
            f"the inferred columns {', '.join(clashes)} repeat a column or clash with the lineage columns "
            f"{', '.join(LINEAGE_COLUMNS)}: rename the header(s) in the files or override them"
        )
    for name in names:
        if not name or "\x00" in name or len(name.encode()) > MAX_IDENTIFIER_BYTES:
            raise IncompatibleTarget(f"column name {name!r} is not a valid PostgreSQL identifier")


def target_columns(cursor: psycopg.Cursor, table: TableName) -> list[ExistingColumn]:
    """The table's columns in order (none if it does not exist)."""
    cursor.execute(query("select_table_columns"), {"table": table.identifier.as_string(cursor)})
    return [ExistingColumn(*row) for row in cursor.fetchall()]


def create_staging(conn: psycopg.Connection, run_id: int, target: TableName) -> None:
    """The run's staging table: the target's columns, types, NOT NULLs and defaults, no rows.

    NOT NULL and the types are copied so that PostgreSQL refuses at import, line by line, what
    the target would refuse at publish for the whole drop. Indexes, constraints and triggers are
    not: the staging table takes COPY at full speed, and publish decides how the target keeps its
    own.
    """
    with conn.transaction():
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}"
                " (LIKE {} INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING GENERATED)"
            ).format(staging_table(run_id), sql.Identifier(target.schema, target.name))
        )
