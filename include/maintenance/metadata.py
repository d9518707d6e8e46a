"""Purge old rows from Airflow's metadata database with ``airflow db clean``, from a task.

Airflow 3 forbids task code to reach the metadata database: before running a task, the
task-SDK supervisor replaces ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` (and the ``[core]``
alias) in the task's environment with ``airflow-db-not-allowed:///``
(``airflow.sdk.execution_time.supervisor.block_orm_access``). An ``airflow db clean``
started from a task inherits that value and fails. Workers may not even hold the database's
address (remote and Kubernetes workers should not).

So the database is granted explicitly: the Airflow connection ``airflow_metadata_db``
describes it, and its URL reaches the ``airflow db clean`` child through the child's
environment only, never its command line, a log line or an exception.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

log = logging.getLogger(__name__)

METADATA_DB_CONN_ID = "airflow_metadata_db"

# The `dag` table is kept out. Its rows are DAGs not parsed since the cutoff; deleting one
# cascades to its serialized versions, and Airflow already deactivates DAGs whose files are
# gone. In 3.3.0 cleaning it also fails on a foreign key (apache/airflow#71864). Nothing
# depends on `dag`, so leaving it out of --tables leaves it alone.
EXCLUDED_TABLES = frozenset({"dag"})

# Rows per delete transaction: the first run on years of history must not hold locks for
# minutes on tables the scheduler writes to every second.
BATCH_SIZE = 10_000

# Airflow connection types, and the SQLAlchemy drivers Airflow's own metadata database uses.
DRIVERS = {"postgres": "postgresql+psycopg2", "mysql": "mysql+mysqldb", "sqlite": "sqlite"}

_CHECKING = re.compile(r"^Checking table (\S+)")
_FOUND = re.compile(r"^Found (\d+) rows meeting deletion criteria")


class MetadataCleanError(RuntimeError):
    """``airflow db clean`` could not run or did not finish its work."""


@dataclass(slots=True)
class MetadataPurge:
    """Rows ``airflow db clean`` found older than the cutoff, per table (deleted unless a dry run)."""

    cutoff: datetime
    dry_run: bool
    rows: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "dry_run": self.dry_run,
            "rows": sum(self.rows.values()),
            "rows_by_table": {table: count for table, count in sorted(self.rows.items()) if count},
        }


def sqlalchemy_url(connection: Any) -> str:
    """The SQLAlchemy URL of the database an Airflow connection describes.

    ``conn_type`` picks the driver (``postgres``, ``mysql``; ``sqlite`` with the file path as
    host); extras may override it (``sqlalchemy_scheme``, e.g. ``postgresql+psycopg``) and add
    URL query parameters (``sqlalchemy_query``, e.g. ``{"sslmode": "require"}``).
    """
    from sqlalchemy.engine import URL

    extras = connection.extra_dejson
    scheme = extras.get("sqlalchemy_scheme") or DRIVERS.get(connection.conn_type)
    if not scheme:
        raise MetadataCleanError(
            f"Airflow connection '{METADATA_DB_CONN_ID}' has type {connection.conn_type!r}: use one of "
            f"{sorted(DRIVERS)}, or set the extra 'sqlalchemy_scheme'"
        )
    if scheme.startswith("sqlite"):
        return URL.create(scheme, database=connection.host or None).render_as_string(hide_password=False)
    url = URL.create(
        scheme,
        username=connection.login or None,
        password=connection.password or None,
        host=connection.host or None,
        port=connection.port or None,
        database=connection.schema or None,
        query={key: str(value) for key, value in (extras.get("sqlalchemy_query") or {}).items()},
    )
    return url.render_as_string(hide_password=False)


def cleanable_tables() -> list[str]:
    """The tables this Airflow version's ``db clean`` knows, minus the excluded ones.

    Asked at run time, so tables that a future Airflow adds are purged without a code change.
    """
    from airflow.utils.db_cleanup import config_dict

    return sorted(set(config_dict) - EXCLUDED_TABLES)


def db_clean_command(cutoff: datetime, *, dry_run: bool, tables: list[str]) -> list[str]:
    """The ``airflow db clean`` command line (it holds no secret: it is logged as is).

    ``--skip-archive``: otherwise every run copies the purged rows into new
    ``_airflow_deleted__<table>__<timestamp>`` tables that nothing ever drops, so a daily
    purge would grow the database it is meant to shrink. Backups are the way back from a
    purge, not archive tables. ``--error-on-cleanup-failure``: by default a table that fails
    to clean is only a warning and the command exits 0, so the task would stay green while
    the database keeps growing.
    """
    command = [
        sys.executable,
        "-m",
        "airflow",
        "db",
        "clean",
        "--clean-before-timestamp",
        cutoff.isoformat(),
        "--tables",
        ",".join(tables),
        "--skip-archive",
        "--error-on-cleanup-failure",
        "--batch-size",
        str(BATCH_SIZE),
        "--yes",
    ]
    return [*command, "--dry-run"] if dry_run else command


def db_clean_environment(base: Mapping[str, str], url: str) -> dict[str, str]:
    """The child's environment: the task's own, with the metadata database granted back."""
    env = dict(base)
    # The [core] alias carries the blocked value too; [database] wins only when the alias is gone.
    env.pop("AIRFLOW__CORE__SQL_ALCHEMY_CONN", None)
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = url
    # The child's log records then arrive as JSON lines: each is logged here once, at its own
    # level, instead of as an INFO line wrapping a second timestamp and level.
    env["AIRFLOW__LOGGING__JSON_LOGS"] = "True"
    return env


def parse_output_line(line: str) -> tuple[int, str]:
    """The level and text of one line of ``airflow db clean``'s output.

    Its log records (a table not found, an error) are JSON with their level; the rest (the
    table of settings, "Checking table ...", "Found N rows ...") is plain text, logged as INFO.
    """
    if line.startswith("{"):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict) and "event" in record:
            level = logging.getLevelNamesMapping().get(str(record.get("level", "")).upper(), logging.INFO)
            text = str(record["event"])
            if record.get("exception"):
                text = f"{text}\n{_exception_text(record['exception'])}"
            return level, text
    return logging.INFO, line


def _exception_text(exception: Any) -> str:
    """structlog's JSON traceback (a list of exceptions with their frames), or text as given."""
    if not isinstance(exception, list):
        return str(exception)
    return "\n".join(
        f"{item.get('exc_type')}: {item.get('exc_value')}" if isinstance(item, dict) else str(item)
        for item in exception
    )


def run_db_clean(
    url: str,
    cutoff: datetime,
    *,
    dry_run: bool,
    tables: list[str],
    base_env: Mapping[str, str] | None = None,
) -> MetadataPurge:
    """Run ``airflow db clean`` against the database at ``url``, logging its output as it comes."""
    command = db_clean_command(cutoff, dry_run=dry_run, tables=tables)
    log.info("running %s", shlex.join(command))
    redact = secret_redactor(url)
    purge = MetadataPurge(cutoff=cutoff, dry_run=dry_run)
    table = None
    with subprocess.Popen(
        command,
        env=db_clean_environment(os.environ if base_env is None else base_env, url),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            for raw in process.stdout:
                if not raw.strip():
                    continue
                level, line = parse_output_line(raw.rstrip())
                line = redact(line)
                log.log(level, "db clean: %s", line)
                if checking := _CHECKING.match(line):
                    table = checking.group(1)
                elif (found := _FOUND.match(line)) and table:
                    purge.rows[table] = int(found.group(1))
        except BaseException:
            # The task timed out or is being stopped: do not leave a purge running behind it.
            process.kill()
            raise
    if process.returncode != 0:
        raise MetadataCleanError(
            f"airflow db clean exited with code {process.returncode}; its output is in the log above. "
            f"Check the Airflow connection '{METADATA_DB_CONN_ID}' if it could not connect."
        )
    log.info(
        "db clean %s %d rows older than %s: %s",
        "found" if dry_run else "deleted",
        sum(purge.rows.values()),
        cutoff.isoformat(),
        purge.summary()["rows_by_table"],
    )
    return purge


def secret_redactor(url: str) -> Callable[[str], str]:
    """Hide the URL and its password wherever a line quotes them (a driver's error, say)."""
    from urllib.parse import quote

    from sqlalchemy.engine import make_url

    password = make_url(url).password
    secrets = [url]
    if password and len(password) > 2:
        secrets += [password, quote(password, safe="")]
    secrets.sort(key=len, reverse=True)

    def redact(line: str) -> str:
        for secret in secrets:
            line = line.replace(secret, "***")
        return line

    return redact
