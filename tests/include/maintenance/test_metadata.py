"""How ``airflow db clean`` is invoked, and how the metadata database's URL stays secret.

The purge itself, through Airflow's real block on task database access, is exercised in
``tests/dags/test_airflow_maintenance.py``.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

import pytest
from airflow.sdk import Connection
from sqlalchemy.engine import make_url

from devservices.postgres import free_port
from include.maintenance.metadata import (
    METADATA_DB_CONN_ID,
    MetadataCleanError,
    cleanable_tables,
    db_clean_command,
    db_clean_environment,
    run_db_clean,
    secret_redactor,
    sqlalchemy_url,
)

CUTOFF = datetime(2026, 8, 25, 3, tzinfo=UTC)
PASSWORD = "Hunter2/Secret@:x"
BLOCKED = "airflow-db-not-allowed:///"


def connection(conn_type: str, **fields: object) -> Connection:
    extra = fields.pop("extra", None)
    return Connection(
        conn_id=METADATA_DB_CONN_ID, conn_type=conn_type, extra=json.dumps(extra) if extra else None, **fields
    )


def test_a_postgres_connection_becomes_the_url_airflow_itself_would_use() -> None:
    url = make_url(
        sqlalchemy_url(
            connection(
                "postgres",
                host="db.internal",
                port=5432,
                schema="airflow",
                login="airflow",
                password=PASSWORD,
                extra={"sqlalchemy_query": {"sslmode": "require"}},
            )
        )
    )

    assert url.drivername == "postgresql+psycopg2"
    assert (url.host, url.port, url.database, url.username) == ("db.internal", 5432, "airflow", "airflow")
    assert url.password == PASSWORD, "special characters in the password must survive the URL"
    assert dict(url.query) == {"sslmode": "require"}


def test_the_driver_can_be_chosen_and_sqlite_takes_its_path_from_the_host() -> None:
    psycopg3 = connection("postgres", host="db", extra={"sqlalchemy_scheme": "postgresql+psycopg"})
    assert make_url(sqlalchemy_url(psycopg3)).drivername == "postgresql+psycopg"
    assert (
        sqlalchemy_url(connection("sqlite", host="/srv/airflow/airflow.db"))
        == "sqlite:////srv/airflow/airflow.db"
    )


def test_an_unknown_connection_type_names_the_connection_to_fix() -> None:
    with pytest.raises(MetadataCleanError, match=f"'{METADATA_DB_CONN_ID}' has type 'http'"):
        sqlalchemy_url(connection("http", host="example.org"))


def test_every_table_db_clean_knows_is_purged_except_dag() -> None:
    tables = cleanable_tables()

    assert "dag" not in tables
    assert {"dag_run", "task_instance", "xcom", "log", "job", "dag_version"} <= set(tables)


def test_the_command_purges_without_archiving_fails_loudly_and_dry_runs_on_request() -> None:
    real = db_clean_command(CUTOFF, dry_run=False, tables=["dag_run", "log"])
    dry = db_clean_command(CUTOFF, dry_run=True, tables=["dag_run", "log"])

    assert real[real.index("--clean-before-timestamp") + 1] == "2026-08-25T03:00:00+00:00"
    assert real[real.index("--tables") + 1] == "dag_run,log"
    assert {"--skip-archive", "--error-on-cleanup-failure", "--yes"} <= set(real)
    assert "--dry-run" not in real
    assert dry == [*real, "--dry-run"]


def test_the_child_gets_the_granted_database_instead_of_the_blocked_one() -> None:
    task_env = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": BLOCKED,
        "AIRFLOW__CORE__SQL_ALCHEMY_CONN": BLOCKED,
        "AIRFLOW_HOME": "/opt/airflow",
    }

    env = db_clean_environment(task_env, "postgresql+psycopg2://a:b@db/airflow")

    assert env == {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://a:b@db/airflow",
        "AIRFLOW_HOME": "/opt/airflow",
        "AIRFLOW__LOGGING__JSON_LOGS": "True",
    }
    assert task_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == BLOCKED, (
        "the task's own environment is untouched"
    )


def test_output_quoting_the_url_or_its_password_is_redacted() -> None:
    url = sqlalchemy_url(
        connection("postgres", host="db", login="airflow", password=PASSWORD, schema="airflow")
    )
    redact = secret_redactor(url)

    line = redact(f"could not connect to {url}; password {PASSWORD!r}; encoded {make_url(url)!s}")

    assert PASSWORD not in line
    assert "Hunter2" not in line
    assert url not in line


def test_a_database_that_cannot_be_reached_fails_the_task_without_revealing_the_password(
    airflow_home, caplog: pytest.LogCaptureFixture
) -> None:
    url = sqlalchemy_url(
        connection(
            "postgres",
            host="127.0.0.1",
            port=free_port(),
            login="airflow",
            password=PASSWORD,
            schema="airflow",
        )
    )

    with caplog.at_level(logging.INFO), pytest.raises(MetadataCleanError, match="exited with code") as error:
        run_db_clean(url, CUTOFF, dry_run=True, tables=["log"])

    assert f"'{METADATA_DB_CONN_ID}'" in str(error.value)
    assert "Connection refused" in caplog.text, "the command's own output is logged"
    for secret in (PASSWORD, "Hunter2"):
        assert secret not in caplog.text
        assert secret not in str(error.value)


def test_the_commands_own_warnings_are_logged_once_at_their_level_without_a_second_timestamp(
    airflow_home, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    # An empty database: `db clean` warns that the table is missing and skips it.
    url = sqlalchemy_url(connection("sqlite", host=str(tmp_path / "empty.db")))

    with caplog.at_level(logging.INFO, logger="include.maintenance.metadata"):
        run_db_clean(url, CUTOFF, dry_run=True, tables=["log"])

    records = [r for r in caplog.records if r.name == "include.maintenance.metadata"]
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert warnings == ["db clean: Table log not found.  Skipping."]
    child_lines = [r.getMessage() for r in records if r.getMessage().startswith("db clean: ")]
    assert any("log.dttm" in line for line in child_lines), "the command's plain output is logged too"
    assert not any(re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", line) for line in child_lines)
    assert not any("[warning" in line or '"level"' in line for line in child_lines)
