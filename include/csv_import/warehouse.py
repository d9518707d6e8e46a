"""Where the CSV import keeps its own tables, and the SQL it runs on them.

The pipeline owns one schema, ``csv_import``: its ledgers and each run's staging table
(``csv_import.stage_<run>``). Statements with fixed text live in ``sql/*.sql``; the few that
name the user's target table are composed where they run, from literal SQL and
:class:`psycopg.sql.Identifier` (``tests/security/test_sql_safety.py`` proves both).
"""

from __future__ import annotations

from pathlib import Path

from psycopg import sql as pgsql

from include.common.postgres import read_sql

SCHEMA = "csv_import"
SQL_DIR = Path(__file__).parent / "sql"


def sql(name: str) -> str:
    """The statement kept in ``sql/<name>.sql``."""
    return read_sql(SQL_DIR, name)


def staging_name(run_id: int) -> str:
    """The name of the run's staging table in the ``csv_import`` schema."""
    return f"stage_{run_id}"


def staging_table(run_id: int) -> pgsql.Identifier:
    """The run's staging table: in the pipeline's own schema, invisible to the target's readers."""
    return pgsql.Identifier(SCHEMA, staging_name(run_id))
