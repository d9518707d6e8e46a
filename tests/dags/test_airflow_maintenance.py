"""``airflow_maintenance`` end to end: ``airflow dags test`` in its own Airflow home.

The home's log folder holds old and recent log files (mtimes set explicitly, so nothing
depends on today's date) and its SQLite metadata database holds a run from long ago. The
connection ``airflow_metadata_db`` points at that same database, as it would in production.
The connection ``learning_platform_db`` points at a real PostgreSQL warehouse holding an old and
a recent published day of the learning platform.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest

from devservices.environment import PROJECT_ROOT, airflow_environment
from devservices.postgres import LocalPostgres
from include.common.intervals import Interval
from include.learning_platform.partitions import day_partitions
from include.learning_platform.warehouse import migrate_schema
from tests.include.learning_platform.stages import run_stages

pytestmark = pytest.mark.timeout(600)

DAG_ID = "airflow_maintenance"
# `airflow dags test` starts a run at its logical date: this run is the "old history".
HISTORY_DATE = "2024-02-01"
# A manual run of 2025-06-03 gets the data interval ending 2025-06-02 03:00 UTC, so its log
# cutoff (30 days) is 2025-05-03 03:00 and its metadata cutoff (90 days) 2025-03-04 03:00.
DRY_RUN_DATE = "2025-06-03"
RUN_DATE = "2025-06-04"
OLD = datetime(2025, 4, 1, tzinfo=UTC).timestamp()
# Landing retention (14 days): the dry run keeps 2025-05-19 on, the run 2025-05-20 on.
OLD_DAY, RECENT_DAY = date(2025, 5, 1), date(2025, 6, 1)
WAREHOUSE = "maintenance_warehouse"
RECENT = datetime(2025, 5, 31, tzinfo=UTC).timestamp()

OLD_FILES = [
    "dag_id=learning_platform_etl/run_id=scheduled__2025-03-31/task_id=extract/attempt=1.log",
    "dag_id=learning_platform_etl/run_id=scheduled__2025-03-31/task_id=load/attempt=1.log",
    "dag_processor/2025-03-31/dags-folder/learning_platform_etl.py.log",
    "scheduler/2025-03-31/learning_platform_etl.py.log",
]
RECENT_FILES = [
    "dag_id=learning_platform_etl/run_id=scheduled__2025-05-30/task_id=extract/attempt=1.log",
    "dag_processor/2025-05-30/dags-folder/learning_platform_etl.py.log",
]


@dataclass(frozen=True)
class Home:
    env: dict[str, str]
    logs: Path
    database: Path
    outside: Path
    warehouse: str  # conninfo of learning_platform_db


@pytest.fixture(scope="module")
def home(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: LocalPostgres, migrated_airflow_db: Path
) -> Iterator[Home]:
    root = tmp_path_factory.mktemp("maintenance")
    base = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env = airflow_environment(root / "airflow", base=base)
    database = root / "airflow" / "airflow.db"
    postgres_server.drop_database(WAREHOUSE)
    postgres_server.create_database(WAREHOUSE)
    warehouse = {"conn_type": "postgres", "host": "127.0.0.1", "port": postgres_server.port}
    warehouse |= {"schema": WAREHOUSE, "login": postgres_server.user, "password": postgres_server.password}
    env.update(
        {
            "AIRFLOW_CONN_AIRFLOW_METADATA_DB": json.dumps({"conn_type": "sqlite", "host": str(database)}),
            "AIRFLOW_CONN_LEARNING_PLATFORM_DB": json.dumps(warehouse),
            "AIRFLOW__PIPELINES__TASK_RETRIES": "1",
            "AIRFLOW__PIPELINES__RETRY_DELAY_SECONDS": "1",
        }
    )
    (root / "airflow").mkdir()
    shutil.copyfile(migrated_airflow_db, database)
    yield Home(
        env=env,
        logs=root / "airflow" / "logs",
        database=database,
        outside=root / "outside",
        warehouse=postgres_server.conninfo(WAREHOUSE),
    )
    postgres_server.drop_database(WAREHOUSE)


@pytest.fixture(scope="module")
def log_folder(home: Home) -> Home:
    """Old and recent logs, plus a symlink to a folder of old files that is not Airflow's."""
    for relative, mtime in [*((f, OLD) for f in OLD_FILES), *((f, RECENT) for f in RECENT_FILES)]:
        path = home.logs / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("log line\n" * 10)
        os.utime(path, (mtime, mtime))
    (home.outside / "keep.log").parent.mkdir(parents=True)
    (home.outside / "keep.log").write_text("not Airflow's\n")
    os.utime(home.outside / "keep.log", (OLD, OLD))
    (home.logs / "mounted").symlink_to(home.outside, target_is_directory=True)
    # Directories last, deepest first: creating their contents bumped their mtimes.
    for directory in sorted(
        (p for p in home.logs.rglob("*") if p.is_dir() and not p.is_symlink()), reverse=True
    ):
        os.utime(directory, (OLD, OLD))
    return home


def airflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def run_maintenance(home: Home, date: str, **params: object) -> str:
    """Run the DAG for ``date``; the run id of the run it created."""
    airflow(home.env, "dags", "test", DAG_ID, date, "-c", json.dumps(params))
    [(run_id,)] = query(
        home, "SELECT run_id FROM dag_run WHERE dag_id = ? AND date(logical_date) = ?", DAG_ID, date
    )
    return run_id


def query(home: Home, sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(home.database) as conn:
        return conn.execute(sql, args).fetchall()


def returned(home: Home, run_id: str, task_id: str) -> dict:
    [(value,)] = query(
        home,
        "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? AND key = 'return_value'",
        DAG_ID,
        run_id,
        task_id,
    )
    return json.loads(value)


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def landed_days(home: Home) -> list[date]:
    with psycopg.connect(home.warehouse) as conn, conn.cursor() as cursor:
        return sorted(day_partitions(cursor))


def test_a_dry_run_deletes_nothing_and_a_real_run_deletes_exactly_what_is_old(
    log_folder: Home, simulator, api_client
) -> None:
    home = log_folder
    simulator.configure(records_per_day=240)
    with psycopg.connect(home.warehouse) as conn:
        migrate_schema(conn)
        for day in (OLD_DAY, RECENT_DAY):
            run_stages(conn, api_client, Interval.for_day(day))
    history = run_maintenance(home, HISTORY_DATE, dry_run=True)
    assert query(home, "SELECT date(start_date) FROM dag_run WHERE run_id = ?", history) == [
        (HISTORY_DATE,)
    ], "precondition: `airflow dags test` starts a run at its logical date"
    history_tasks = query(home, "SELECT count(*) FROM task_instance WHERE run_id = ?", history)
    assert history_tasks == [(3,)]
    before = tree(home.logs)

    dry = run_maintenance(home, DRY_RUN_DATE, dry_run=True)

    assert tree(home.logs) == before
    assert query(home, "SELECT count(*) FROM dag_run WHERE run_id = ?", history) == [(1,)]
    assert returned(home, dry, "delete_old_logs") == {
        "root": str(home.logs),
        "cutoff": "2025-05-03T03:00:00+00:00",
        "dry_run": True,
        "files": len(OLD_FILES),
        "bytes": len(OLD_FILES) * len("log line\n" * 10),
        # the old run's folder and its two task folders; the old dated folders of the dag
        # processor (with dags-folder inside) and of the scheduler, and `scheduler` itself,
        # which held nothing else
        "directories": 7,
        "failures": 0,
    }
    dry_clean = returned(home, dry, "clean_metadata")
    assert dry_clean["cutoff"] == "2025-03-04T03:00:00+00:00"
    assert dry_clean["dry_run"] is True
    assert dry_clean["rows_by_table"]["dag_run"] == 1
    dry_landing = returned(home, dry, "drop_old_landing")
    assert dry_landing == {
        "oldest_kept_day": "2025-05-19",
        "dry_run": True,
        "days": 1,
        "first_day": OLD_DAY.isoformat(),
        "last_day": OLD_DAY.isoformat(),
        "bytes": dry_landing["bytes"],
        "unpublished_days": [],
        "busy_days": [],
    }
    assert dry_landing["bytes"] > 0
    assert landed_days(home) == [OLD_DAY, RECENT_DAY]

    run = run_maintenance(home, RUN_DATE)

    assert tree(home.logs) == (before - set(OLD_FILES)) - {
        "dag_id=learning_platform_etl/run_id=scheduled__2025-03-31",
        "dag_id=learning_platform_etl/run_id=scheduled__2025-03-31/task_id=extract",
        "dag_id=learning_platform_etl/run_id=scheduled__2025-03-31/task_id=load",
        "dag_processor/2025-03-31",
        "dag_processor/2025-03-31/dags-folder",
        "scheduler/2025-03-31",
        "scheduler",
    }
    assert all((home.logs / f).is_file() for f in RECENT_FILES)
    assert (home.outside / "keep.log").is_file(), "a symlink out of the log folder was followed"
    assert returned(home, run, "delete_old_logs")["files"] == len(OLD_FILES)
    # The history run and its task instances are gone; the runs since the cutoff stay.
    assert query(home, "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY run_id", DAG_ID) == sorted(
        [(dry,), (run,)]
    )
    assert query(home, "SELECT count(*) FROM task_instance WHERE run_id = ?", history) == [(0,)]
    clean = returned(home, run, "clean_metadata")
    assert clean["dry_run"] is False
    assert clean["rows_by_table"]["dag_run"] == 1
    assert not [name for (name,) in query(home, "SELECT name FROM sqlite_master") if "deleted" in name], (
        "db clean left archive tables behind"
    )
    landing = returned(home, run, "drop_old_landing")
    assert landing == dry_landing | {"oldest_kept_day": "2025-05-20", "dry_run": False}
    assert landed_days(home) == [RECENT_DAY]


BLOCKED_TASK = textwrap.dedent(
    """
    import json, os, subprocess, sys
    from datetime import UTC, datetime

    import airflow.settings  # a task process has Airflow's settings loaded when the block applies
    from airflow.sdk.execution_time.supervisor import block_orm_access

    from include.maintenance.metadata import cleanable_tables, run_db_clean

    block_orm_access()
    assert "log" in cleanable_tables()  # the task asks Airflow for the tables after the block
    blocked = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    inherited = subprocess.run([sys.executable, "-m", "airflow", "db", "check"], capture_output=True)
    purge = run_db_clean(
        sys.argv[1], datetime(2025, 1, 1, tzinfo=UTC), dry_run=False, tables=["log"]
    )
    print(json.dumps({"blocked": blocked, "inherited_exit": inherited.returncode, **purge.summary()}))
    """
)


def test_db_clean_reaches_the_metadata_database_from_a_process_whose_orm_access_is_blocked(
    home: Home,
) -> None:
    with sqlite3.connect(home.database) as conn:
        conn.executemany(
            "INSERT INTO log (dttm, event, owner) VALUES (?, 'maintenance-test', 'test')",
            [("2020-01-01 00:00:00.000000",), ("2099-01-01 00:00:00.000000",)],
        )

    task = subprocess.run(
        [sys.executable, "-c", BLOCKED_TASK, f"sqlite:///{home.database}"],
        env=home.env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert task.returncode == 0, task.stdout[-4000:] + task.stderr[-4000:]
    result = json.loads(task.stdout.strip().splitlines()[-1])
    # The premise: Airflow's block really reaches the children of a task...
    assert result["blocked"] == "airflow-db-not-allowed:///"
    assert result["inherited_exit"] != 0
    # ...and the granted connection gets through it.
    assert result["rows_by_table"] == {"log": 1}
    remaining = query(home, "SELECT substr(dttm, 1, 4) FROM log WHERE event = 'maintenance-test'")
    assert remaining == [("2099",)]
