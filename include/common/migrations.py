"""Apply a pipeline's numbered SQL migrations once each, in order, in one transaction.

Each pipeline owns one schema and keeps ``NNNN_description.sql`` files; what has been applied is
recorded in that schema's own ``schema_migrations`` table. A migration that was edited after it
ran is an error, not a silent no-op: schema changes go in a new file.

The pipeline's database role needs no privilege beyond its own schema. PostgreSQL checks the
privilege to create *before* it looks whether the object exists, so ``CREATE SCHEMA IF NOT
EXISTS`` fails for a role without CREATE on the database even when the schema is there (and so
does ``CREATE TABLE IF NOT EXISTS`` in a schema it may not create in). The runner therefore
looks first and creates only what is missing: a DBA can create the schema for the role
(``CREATE SCHEMA <schema> AUTHORIZATION <role>``), and the role needs nothing else.

Migrations run with ``search_path`` set to the pipeline's schema, so unqualified names in them
land in it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

LEDGER = "schema_migrations"
# Where the ledger was kept before each pipeline kept its own: adopted once, then left alone.
_LEGACY_LEDGER = sql.Identifier("public", LEDGER)


class MigrationError(RuntimeError):
    """The migrations on disk disagree with what the database has recorded, or cannot run."""


def migrate(
    conn: psycopg.Connection,
    schema: str,
    directory: Path,
    *,
    superseded: Mapping[str, str] | None = None,
) -> list[str]:
    """Apply the pending migrations of ``schema``; return the versions applied now.

    ``superseded`` maps a version to the checksum of an earlier text of it that is known to be
    equivalent for databases that applied it (a migration corrected after release, say why where
    the mapping is kept); such a database is taken as up to date and its ledger brought forward.
    """
    files = sorted(directory.glob("*.sql"))
    if not files:
        raise MigrationError(f"no migrations found in {directory}")
    superseded = superseded or {}
    ledger = sql.Identifier(schema, LEDGER)
    applied_now: list[str] = []
    with conn.transaction(), conn.cursor() as cursor:
        # Two workers starting the same pipeline at once must not both run a migration.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{schema}.{LEDGER}",))
        _ensure_schema(cursor, schema)
        cursor.execute("SELECT pg_catalog.set_config('search_path', %s, true)", (schema,))
        recorded = _recorded(cursor, schema, ledger)
        for path in files:
            text = path.read_text(encoding="utf-8")
            checksum = hashlib.sha256(text.encode()).hexdigest()
            version = path.stem
            if version in recorded:
                if recorded[version] == superseded.get(version):
                    cursor.execute(
                        sql.SQL("UPDATE {} SET checksum = %s WHERE version = %s").format(ledger),
                        (checksum, version),
                    )
                elif recorded[version] != checksum:
                    raise MigrationError(
                        f"{path.name} changed after it was applied to this database; "
                        "put schema changes in a new migration file"
                    )
                continue
            cursor.execute(text)
            cursor.execute(
                sql.SQL("INSERT INTO {} (version, checksum) VALUES (%s, %s)").format(ledger),
                (version, checksum),
            )
            applied_now.append(version)
    log.info("%s schema: %d migration(s) applied %s", schema, len(applied_now), applied_now)
    return applied_now


def _ensure_schema(cursor: psycopg.Cursor, schema: str) -> None:
    """Create the schema only if it is missing, with one message naming the grant when refused."""
    if _exists(cursor, "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s", schema):
        return
    try:
        with cursor.connection.transaction():
            cursor.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    except psycopg.errors.InsufficientPrivilege:
        role = cursor.execute("SELECT current_user").fetchone()[0]
        raise MigrationError(
            f"schema {schema} does not exist and role {role} may not create it; ask a DBA to run "
            f"CREATE SCHEMA {schema} AUTHORIZATION {role}"
        ) from None


def _recorded(cursor: psycopg.Cursor, schema: str, ledger: sql.Identifier) -> dict[str, str]:
    """The applied versions and their checksums, creating the ledger (or adopting the old one)."""
    if not _exists(cursor, "SELECT to_regclass(%s)", f"{schema}.{LEDGER}"):
        _create_ledger(cursor, schema, ledger)
    cursor.execute(sql.SQL("SELECT version, checksum FROM {}").format(ledger))
    return dict(cursor.fetchall())


def _create_ledger(cursor: psycopg.Cursor, schema: str, ledger: sql.Identifier) -> None:
    cursor.execute(
        sql.SQL(
            "CREATE TABLE {} (version text PRIMARY KEY, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        ).format(ledger)
    )
    if _exists(cursor, "SELECT to_regclass(%s)", f"public.{LEDGER}"):
        cursor.execute(
            sql.SQL(
                "INSERT INTO {} (version, checksum, applied_at) "
                "SELECT version, checksum, applied_at FROM {} WHERE component = %s"
            ).format(ledger, _LEGACY_LEDGER),
            (schema,),
        )
        if cursor.rowcount:
            log.info(
                "%s schema: %d applied migration(s) adopted from public.%s", schema, cursor.rowcount, LEDGER
            )


def _exists(cursor: psycopg.Cursor, query: str, name: str) -> bool:
    row = cursor.execute(query, (name,)).fetchone()
    return row is not None and row[0] is not None
