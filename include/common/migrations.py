"""Apply a pipeline's numbered SQL migrations once each, in order, in one transaction.

Each pipeline keeps ``NNNN_description.sql`` files; what has been applied is recorded in
``public.schema_migrations``. A migration that was edited after it ran is an error, not a
silent no-op: schema changes go in a new file.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import psycopg

log = logging.getLogger(__name__)

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS public.schema_migrations (
    component  text        NOT NULL,
    version    text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version)
)
"""


class MigrationError(RuntimeError):
    """The migrations on disk disagree with what the database has recorded."""


def migrate(conn: psycopg.Connection, component: str, directory: Path) -> list[str]:
    """Apply the pending migrations of ``component``; return the versions applied now."""
    files = sorted(directory.glob("*.sql"))
    if not files:
        raise MigrationError(f"no migrations found in {directory}")
    applied_now: list[str] = []
    with conn.transaction(), conn.cursor() as cursor:
        # Two workers starting the same pipeline at once must not both run a migration.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('public.schema_migrations'))")
        cursor.execute(_CREATE_LEDGER)
        cursor.execute(
            "SELECT version, checksum FROM public.schema_migrations WHERE component = %s",
            (component,),
        )
        recorded = dict(cursor.fetchall())
        for path in files:
            text = path.read_text(encoding="utf-8")
            checksum = hashlib.sha256(text.encode()).hexdigest()
            version = path.stem
            if version in recorded:
                if recorded[version] != checksum:
                    raise MigrationError(
                        f"{path.name} changed after it was applied to this database; "
                        "put schema changes in a new migration file"
                    )
                continue
            cursor.execute(text)
            cursor.execute(
                "INSERT INTO public.schema_migrations (component, version, checksum) VALUES (%s, %s, %s)",
                (component, version, checksum),
            )
            applied_now.append(version)
    log.info("%s schema: %d migration(s) applied %s", component, len(applied_now), applied_now)
    return applied_now
