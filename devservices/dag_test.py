"""Run a DAG once on this machine with ``airflow dags test``, as ``make run`` does.

The local runners (:mod:`devservices.local_runs`) share this: Airflow's environment for the
project, its metadata database brought up to date, the run itself with its output kept in a log
file under the local state folder, and the local services stopped afterwards.

``airflow db migrate`` costs about ten seconds of Airflow start-up even when there is nothing to
migrate, on every ``make run``. When the metadata database is the Airflow home's own SQLite file
(``make run``'s), a successful migrate records the revision it left the database at, with the
Airflow version; the next run skips the command while both still match. Any other database, a
removed or replaced file, or another Airflow version is migrated as before.
"""

from __future__ import annotations

import configparser
import contextlib
import json
import logging
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from devservices.environment import PROJECT_ROOT, airflow_environment, load_settings
from devservices.local_services import log_path

# Written into the Airflow home after a successful migrate: {"airflow": version, "revision": ...}.
MIGRATED_STAMP = "metadata-db-migrated.json"

log = logging.getLogger("make run")


@dataclass(frozen=True)
class DagTest:
    """The outcome of one ``airflow dags test``: its exit code, where its output went, how long it
    took (Airflow's start-up included)."""

    returncode: int
    log: Path
    seconds: float

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0


class LocalAirflow:
    """The Airflow CLI with the project's DAGs, plugins and local settings (``.env``)."""

    def __init__(self) -> None:
        load_settings()
        self.home = Path(os.environ["AIRFLOW_HOME"])
        self.env = airflow_environment(self.home)

    def migrate(self) -> bool:
        """Bring the metadata database to this Airflow's schema; False when it already was."""
        stamp = self.home / MIGRATED_STAMP
        database = sqlite_metadata_db(self.home, self.env)
        if database is not None and metadata_db_is_current(database, stamp):
            log.info(
                "metadata database %s already migrated by Airflow %s", database, version("apache-airflow")
            )
            return False
        self.run(["db", "migrate"], log_name="airflow-db-migrate")
        revision = None if database is None else alembic_revision(database)
        if revision is not None:
            stamp.write_text(json.dumps({"airflow": version("apache-airflow"), "revision": revision}) + "\n")
        return True

    def dags_test(self, dag_id: str, logical_date: str, conf: dict[str, Any], *, log_name: str) -> DagTest:
        """Run ``dag_id`` once for ``logical_date`` with ``conf``; a failed run is returned, not raised."""
        started = time.monotonic()
        completed = self.run(
            ["dags", "test", dag_id, logical_date, "--conf", json.dumps(conf)],
            log_name=log_name,
            check=False,
        )
        return DagTest(completed.returncode, log_path(log_name), time.monotonic() - started)

    def dags_test_now(self, dag_id: str, conf: dict[str, Any]) -> DagTest:
        """``dags_test`` of an unscheduled DAG, as a person triggers it: now as its logical date."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        return self.dags_test(dag_id, now, conf, log_name=f"dags-test-{dag_id}")

    def run(
        self, args: list[str], *, log_name: str, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        path = log_path(log_name)
        with path.open("w") as out:
            completed = subprocess.run(
                [str(Path(sys.executable).parent / "airflow"), *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=PROJECT_ROOT,
                check=False,
            )
        if check and completed.returncode != 0:
            tail = "".join(path.read_text(errors="replace").splitlines(keepends=True)[-30:])
            raise RuntimeError(
                f"airflow {' '.join(args)} failed ({completed.returncode}); log {path}:\n{tail}"
            )
        return completed


def sqlite_metadata_db(home: Path, env: Mapping[str, str]) -> Path | None:
    """The SQLite file that is Airflow's metadata database in ``env``, or None for any other kind.

    Read from the environment and ``airflow.cfg`` without importing Airflow, which would cost the
    start-up that skipping a migrate saves. A setting only Airflow can resolve (``_CMD``,
    ``_SECRET``, an async URL, the deprecated ``[core]`` key) counts as another kind.
    """
    url = _metadata_url(home, env)
    if url is None or not url.startswith("sqlite:///") or "?" in url:
        return None
    path = Path(url.removeprefix("sqlite:///"))
    return path if path.is_absolute() else None


def _metadata_url(home: Path, env: Mapping[str, str]) -> str | None:
    keys = {f"sql_alchemy_conn{suffix}" for suffix in ("", "_cmd", "_secret", "_async")}
    in_env = {
        name
        for name in env
        if name in {f"AIRFLOW__{section}__{key}".upper() for section in ("core", "database") for key in keys}
    }
    if in_env:
        return (
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
            if in_env == {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"}
            else None
        )
    config = configparser.ConfigParser(interpolation=None)
    config.read(home / "airflow.cfg")
    in_config = {
        (section, key) for section in ("core", "database") for key in keys if config.has_option(section, key)
    }
    if not in_config:
        return f"sqlite:///{home / 'airflow.db'}"
    return (
        config.get("database", "sql_alchemy_conn")
        if in_config == {("database", "sql_alchemy_conn")}
        else None
    )


def alembic_revision(database: Path) -> str | None:
    """The schema revision Airflow's migrations left ``database`` at; None without one."""
    try:
        with contextlib.closing(sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)) as conn:
            revisions = [row[0] for row in conn.execute("SELECT version_num FROM alembic_version")]
    except sqlite3.Error:
        return None
    return ",".join(sorted(revisions)) or None


def metadata_db_is_current(database: Path, stamp: Path) -> bool:
    """True while ``database`` is at the revision this Airflow version's last migrate left it at."""
    try:
        recorded = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    return recorded == {"airflow": version("apache-airflow"), "revision": alembic_revision(database)}
