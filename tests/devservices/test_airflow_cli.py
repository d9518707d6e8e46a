"""``make airflow-cli``: the README's ``airflow`` commands work on a fresh clone.

Each test runs ``make airflow-cli`` in a child process with its own state folder, Airflow home
and ports, as a newcomer would run it: no AIRFLOW_HOME, no migrated metadata database.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from devservices.environment import LOCAL_SETTINGS, PROJECT_ROOT, environment_without
from devservices.postgres import LocalPostgres, free_port
from devservices.smtp_sink import SmtpSink
from tests.test_end_to_end import api_connection, port_is_closed, smtp_connection, warehouse_connection

pytestmark = pytest.mark.timeout(600)

README = PROJECT_ROOT / "README.md"
DB_PASSWORD = "cli-password"


@pytest.fixture(scope="module")
def cli_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    state = tmp_path_factory.mktemp("airflow_cli")
    db_port, api_port, smtp_port = free_port(), free_port(), free_port()
    env = environment_without((*LOCAL_SETTINGS, "LOCAL_AIRFLOW"))
    env.update(
        {
            "PIPELINES_LOCAL_DIR": str(state),
            "AIRFLOW_HOME": str(state / "airflow"),
            "AIRFLOW_CONN_LEARNING_PLATFORM_DB": warehouse_connection(db_port, "warehouse", DB_PASSWORD),
            "AIRFLOW_CONN_LEARNING_PLATFORM_API": api_connection(
                f"http://127.0.0.1:{api_port}", "cli-client", "cli-key"
            ),
            "AIRFLOW_CONN_SMTP_DEFAULT": smtp_connection(smtp_port),
            "LOCAL_AIRFLOW_PORT": str(free_port()),
            "START_LOCAL_POSTGRES": "1",
            "START_LOCAL_SIMULATOR": "1",
            "START_LOCAL_SMTP_SINK": "1",
        }
    )
    env["db_port"], env["api_port"], env["smtp_port"] = str(db_port), str(api_port), str(smtp_port)
    yield env
    LocalPostgres(state_dir=state / "postgres", port=db_port).destroy()


def make_airflow_cli(env: dict[str, str], command_line: str) -> subprocess.CompletedProcess[str]:
    """``command_line`` as a user types it (``make airflow-cli ARGS=...``), through a shell."""
    assert command_line.startswith("make airflow-cli ARGS=")
    return subprocess.run(
        ["bash", "-c", command_line],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )


def readme_commands() -> list[str]:
    """The README's Airflow CLI commands a reader would run: each names one of our DAGs.

    Mentions such as `airflow dags test learning_platform_etl <date>` (what `make run` does) or
    `airflow db clean` (what a task runs) are not commands to copy.
    """
    text = README.read_text()
    spans = re.findall(r"```[a-z]*\n(.*?)```", text, re.DOTALL) + re.findall(r"`([^`\n]+)`", text)
    lines = {line.strip() for span in spans for line in span.splitlines()}
    dag_ids = "|".join(path.stem for path in (PROJECT_ROOT / "dags").glob("*.py"))
    return sorted(
        line
        for line in lines
        if re.match(r"(make airflow-cli ARGS=\"|airflow )", line)
        and (re.search(rf"\b({dag_ids})\b", line) or "dags list" in line)
        and "<" not in line
    )


def test_every_airflow_command_in_the_readme_goes_through_make_airflow_cli() -> None:
    commands = readme_commands()

    assert len(commands) >= 5, commands
    bare = [command for command in commands if not command.startswith("make airflow-cli ARGS=")]
    assert bare == []


def test_a_command_runs_against_a_migrated_database_and_stops_the_services_it_started(
    cli_environment,
) -> None:
    listed = make_airflow_cli(cli_environment, 'make airflow-cli ARGS="dags list -o json"')

    assert listed.returncode == 0, listed.stdout[-3000:] + listed.stderr[-3000:]
    json_line = next(line for line in listed.stdout.splitlines() if line.startswith("["))
    dag_ids = {dag["dag_id"] for dag in json.loads(json_line)}
    assert dag_ids == {path.stem for path in (PROJECT_ROOT / "dags").glob("*.py")}
    for port in ("db_port", "api_port", "smtp_port"):
        assert port_is_closed(cli_environment[port]), f"a service was left running on its {port}"


def test_the_readmes_maintenance_dry_run_works_beside_running_services(cli_environment) -> None:
    """As with ``make airflow`` in another terminal: the services it finds are used and left running."""
    [command] = {c for c in readme_commands() if "dags test airflow_maintenance" in c}
    state = Path(cli_environment["PIPELINES_LOCAL_DIR"])
    with (
        LocalPostgres(
            state_dir=state / "postgres", port=int(cli_environment["db_port"]), password=DB_PASSWORD
        ),
        SmtpSink(state / "outbox", port=int(cli_environment["smtp_port"])),
    ):
        run = make_airflow_cli(cli_environment, command)

        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert not port_is_closed(cli_environment["db_port"]), "a PostgreSQL it did not start was stopped"
        assert not port_is_closed(cli_environment["smtp_port"])
    assert "reusing the SMTP server already listening" in run.stderr
    assert re.search(r"DagRun Finished: dag_id=airflow_maintenance, .* state=success", run.stdout)
