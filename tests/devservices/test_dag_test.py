"""``make run`` skips ``airflow db migrate`` only for a SQLite metadata database it knows is current.

The skip saves ~10 s of Airflow start-up per run; a wrong skip would run a DAG on an outdated or
missing schema. These tests build the SQLite files and Airflow homes by hand; the end-to-end tests
(``tests/test_csv_folder_import.py``) show the skip with a database a real migrate left.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from contextlib import closing
from importlib.metadata import version
from pathlib import Path

import pytest

from devservices.dag_test import (
    MIGRATED_STAMP,
    metadata_db_is_current,
    run_until_its_run_ends,
    sqlite_metadata_db,
)

REVISION = "d2f4e1b3c5a7"


def metadata_db(path: Path, revision: str | None = REVISION) -> Path:
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        if revision is not None:
            conn.execute("INSERT INTO alembic_version VALUES (?)", (revision,))
    return path


def stamp(home: Path, *, airflow: str | None = None, revision: str = REVISION) -> Path:
    path = home / MIGRATED_STAMP
    path.write_text(json.dumps({"airflow": airflow or version("apache-airflow"), "revision": revision}))
    return path


def test_a_database_at_the_revision_this_airflow_left_is_current(tmp_path: Path) -> None:
    database = metadata_db(tmp_path / "airflow.db")

    assert metadata_db_is_current(database, stamp(tmp_path))


@pytest.mark.parametrize(
    "change",
    ["no stamp", "another Airflow version", "another revision", "database removed", "no revision"],
)
def test_any_doubt_about_the_database_means_migrating(tmp_path: Path, change: str) -> None:
    database = metadata_db(tmp_path / "airflow.db", revision=None if change == "no revision" else REVISION)
    recorded = stamp(
        tmp_path,
        airflow="2.10.3" if change == "another Airflow version" else None,
        revision="0123456789ab" if change == "another revision" else REVISION,
    )
    if change == "no stamp":
        recorded.unlink()
    if change == "database removed":
        database.unlink()

    assert not metadata_db_is_current(database, recorded)
    if change == "database removed":
        assert not database.exists(), "looking must not create an empty database"


def test_a_fresh_home_and_its_generated_config_name_the_same_sqlite_file(tmp_path: Path) -> None:
    assert sqlite_metadata_db(tmp_path, {}) == tmp_path / "airflow.db"
    (tmp_path / "airflow.cfg").write_text(f"[database]\nsql_alchemy_conn = sqlite:///{tmp_path}/airflow.db\n")

    assert sqlite_metadata_db(tmp_path, {}) == tmp_path / "airflow.db"
    # Settings that merely share the prefix change nothing.
    (tmp_path / "airflow.cfg").write_text(
        f"[database]\nsql_alchemy_conn = sqlite:///{tmp_path}/airflow.db\nsql_alchemy_connect_args = x.y\n"
    )
    assert sqlite_metadata_db(tmp_path, {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "x.y"}) == (
        tmp_path / "airflow.db"
    )
    other = tmp_path / "elsewhere.db"
    assert (
        sqlite_metadata_db(tmp_path, {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{other}"}) == other
    )


@pytest.mark.parametrize(
    ("env", "config"),
    [
        ({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://u:p@127.0.0.1/airflow"}, ""),
        ({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD": "cat /run/secrets/db-url"}, ""),
        ({"AIRFLOW__CORE__SQL_ALCHEMY_CONN": "sqlite:////tmp/old-key.db"}, ""),
        ({}, "[database]\nsql_alchemy_conn = postgresql://u:p@127.0.0.1/airflow\n"),
        ({}, "[database]\nsql_alchemy_conn_secret = metadata-db-url\n"),
        ({}, "[database]\nsql_alchemy_conn = sqlite:///relative.db\n"),
    ],
    ids=["postgres in env", "cmd in env", "deprecated key", "postgres in cfg", "secret in cfg", "relative"],
)
def test_a_database_only_airflow_can_locate_is_always_migrated(
    tmp_path: Path, env: dict[str, str], config: str
) -> None:
    (tmp_path / "airflow.cfg").write_text(config)

    assert sqlite_metadata_db(tmp_path, env) is None


# --- a `dags test --use-executor` that does not exit after its run ---------------------------------
# Airflow 3.3.2's command sometimes hangs shutting its LocalExecutor down after the run has ended.
# Stand-in commands play it here: the guard reads only the metadata database and the process.


def dag_runs(path: Path, *runs: tuple[str, str]) -> Path:
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS dag_run"
            " (id INTEGER PRIMARY KEY, dag_id TEXT, run_id TEXT, state TEXT)"
        )
        conn.executemany("INSERT INTO dag_run (dag_id, run_id, state) VALUES ('relay', ?, ?)", runs)
    return path


# Records its run's outcome the way Airflow does, then hangs like the executor's shutdown.
HANGS_AFTER_ITS_RUN = """
import sqlite3, sys, time
with sqlite3.connect(sys.argv[1]) as conn:
    conn.execute(
        "INSERT INTO dag_run (dag_id, run_id, state) VALUES ('relay', 'manual__new', ?)", (sys.argv[2],)
    )
time.sleep(600)
"""


@pytest.mark.parametrize(("state", "outcome"), [("success", 0), ("failed", 1)])
def test_a_command_hanging_after_its_run_ended_is_stopped_and_the_runs_state_is_the_outcome(
    tmp_path: Path, state: str, outcome: int
) -> None:
    database = dag_runs(tmp_path / "airflow.db", ("manual__old", "success"))
    command = [sys.executable, "-c", HANGS_AFTER_ITS_RUN, str(database), state]

    returned = run_until_its_run_ends(
        command, env=os.environ, output=tmp_path / "out.log", database=database, dag_id="relay", grace_s=1
    )

    assert returned == outcome


def test_a_command_is_not_stopped_while_only_an_earlier_run_has_ended(tmp_path: Path) -> None:
    database = dag_runs(tmp_path / "airflow.db", ("manual__old", "failed"))
    # Exits by itself, with its own status, after the guard has looked at the database a few times.
    command = [sys.executable, "-c", "import time, sys; time.sleep(3); sys.exit(7)"]

    returned = run_until_its_run_ends(
        command, env=os.environ, output=tmp_path / "out.log", database=database, dag_id="relay", grace_s=0
    )

    assert returned == 7
