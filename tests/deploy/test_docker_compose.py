"""docker-compose.yaml deploys the pipelines as intended, checked without a Docker engine.

The file must follow the Compose specification, take every secret from `.env` (and refuse to
start without them), build and mount only files that exist, pin every image, run Airflow with
the CeleryExecutor behind a login, and hand the DAGs the connections and Variables they use,
pointing at this deployment's own services. Every check also runs on a broken copy of the
file, to prove it can fail.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devservices.profile_receiver import TOKEN_ENV as RECEIVER_TOKEN_VARIABLE
from devservices.simulator.__main__ import ENV_PREFIX as SIMULATOR_ENV_PREFIX
from include.column_sums.settings import DEFAULT_AWS_CONN_ID as SUMS_DEFAULT_AWS_CONN_ID
from include.column_sums.settings import DEFAULT_CONN_ID as SUMS_DEFAULT_CONN_ID
from include.column_sums.settings import SETTINGS_VARIABLE as SUMS_VARIABLE
from include.column_sums.settings import SumsSpec
from include.common.alerts import ALERT_RECIPIENTS_VARIABLE
from include.common.dag_defaults import RETRY_DELAY_SECONDS, TASK_RETRIES
from include.common.email import DEFAULT_SMTP_CONN_ID, parse_recipients
from include.csv_import.spec import DEFAULT_DB_CONN_ID as CSV_DB_CONN_ID
from include.csv_import.spec import SETTINGS_VARIABLE as CSV_VARIABLE
from include.csv_import.spec import ImportSpec
from include.learning_platform.api import API_CONN_ID
from include.learning_platform.settings import REPORT_VARIABLE, parse_report_settings
from include.learning_platform.warehouse import DB_CONN_ID, TEST_DB_CONN_ID
from include.profile_relay.settings import DEFAULT_CONN_ID as RELAY_DB_CONN_ID
from include.profile_relay.settings import DEFAULT_RECEIVER_CONN_ID as RELAY_RECEIVER_CONN_ID
from include.usage_ingest.settings import DEFAULT_CONN_ID as USAGE_DB_CONN_ID
from include.usage_ingest.settings import SETTINGS_VARIABLE as USAGE_VARIABLE
from include.usage_ingest.settings import IngestSpec
from tests.deploy.compose_checks import (
    Dockerfile,
    airflow_services,
    auth_problems,
    build_of,
    column_sums_problems,
    components,
    connection_host,
    connection_problems,
    connections,
    deployment_problems,
    dockerignored,
    drop_folder_problems,
    environment_of,
    interpolate,
    load_compose,
    missing_paths,
    pipeline_environment_problems,
    port_errors,
    read_env_file,
    receiver_problems,
    references,
    retry_problems,
    schema_errors,
    secret_problems,
    unpinned_images,
    usage_folder_problems,
    warehouse_problems,
)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
COMPOSE_SECTION = "# --- docker compose"
PIPELINE_CONNECTIONS = (
    API_CONN_ID,
    DB_CONN_ID,
    DEFAULT_SMTP_CONN_ID,
    TEST_DB_CONN_ID,
    CSV_DB_CONN_ID,
    RELAY_RECEIVER_CONN_ID,
)
PIPELINE_VARIABLES = (REPORT_VARIABLE, ALERT_RECIPIENTS_VARIABLE, CSV_VARIABLE, USAGE_VARIABLE, SUMS_VARIABLE)
RECEIVER_MODULE = "devservices.profile_receiver"
# WAL written by a day of 1M attempts, measured on PostgreSQL 15 (pg_current_wal_lsn before and
# after each stage): extract 685 MB, validate 481 MB, load 559 MB.
DAY_WAL_BYTES = (685 + 481 + 559) * 1000**2


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    """The compose file as written (anchors resolved, nothing interpolated)."""
    return load_compose(COMPOSE_FILE)


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def operator_env(raw: dict[str, Any], env_example: dict[str, str]) -> dict[str, str]:
    """The `.env` an operator writes: `.env.example` with every required secret filled in."""
    missing = interpolate(raw, env_example).required_empty
    return {**env_example, **{name: f"test-{name.lower().replace('_', '-')}" for name in missing}}


@pytest.fixture(scope="module")
def deployed(raw: dict[str, Any], operator_env: dict[str, str]) -> dict[str, Any]:
    """The document `docker compose` runs with that `.env`."""
    return interpolate(raw, operator_env).document


# --- The file and its configuration -------------------------------------------------------


def test_the_file_follows_the_compose_specification(raw: dict[str, Any], deployed: dict[str, Any]) -> None:
    assert schema_errors(raw) == []
    assert schema_errors(deployed) == []
    assert port_errors(deployed) == []


def test_every_variable_is_defined_in_env_example_or_defaulted(
    raw: dict[str, Any], env_example: dict[str, str]
) -> None:
    result = interpolate(raw, env_example)
    assert result.undefined == set()
    assert result.invalid == []


def test_every_variable_is_documented_in_env_example_with_the_files_default(
    raw: dict[str, Any], env_example: dict[str, str]
) -> None:
    assert {name for name, _ in references(raw)} - set(env_example) == set()
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    defaults = re.findall(r"\$\{(\w+):?-([^${}]*)\}", text)
    assert [(name, default) for name, default in defaults if env_example[name] != default] == []


def test_compose_refuses_to_start_until_every_secret_is_set(
    raw: dict[str, Any], env_example: dict[str, str], operator_env: dict[str, str]
) -> None:
    _, secrets = secret_problems(raw)
    assert secrets, "found no secret at all: the secret detection is broken"
    assert interpolate(raw, env_example).required_empty == secrets
    assert {name: env_example[name] for name in secrets} == dict.fromkeys(secrets, "")
    filled = interpolate(raw, operator_env)
    assert (filled.undefined, filled.required_empty) == (set(), set())


def test_no_secret_is_written_into_the_file(raw: dict[str, Any]) -> None:
    problems, _ = secret_problems(raw)
    assert problems == []


def test_env_example_compose_section_changes_no_airflow_setting_of_local_runs() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert COMPOSE_SECTION in text
    section = text.split(COMPOSE_SECTION, 1)[1]
    keys = re.findall(r"^([A-Z_][A-Z0-9_]*)=", section, re.MULTILINE)
    assert keys
    assert [key for key in keys if re.match(r"AIRFLOW(__|_CONN_|_VAR_|_HOME$)", key)] == []


# --- Files and images ---------------------------------------------------------------------


def test_every_local_path_exists(deployed: dict[str, Any]) -> None:
    assert missing_paths(deployed, ROOT) == []


def test_every_image_is_pinned_to_one_release(deployed: dict[str, Any]) -> None:
    assert unpinned_images(deployed, ROOT) == []


def test_the_image_is_the_locked_airflow_on_the_locked_python(deployed: dict[str, Any]) -> None:
    [dockerfile] = {
        build_of(service, ROOT)[1] for service in deployed["services"].values() if "build" in service
    }
    airflow = re.search(r"^apache-airflow==(\S+)", (ROOT / "requirements.txt").read_text(), re.MULTILINE)
    assert airflow
    requires_python = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    python = re.search(r">=(\d+\.\d+)", requires_python)
    assert python
    image = Dockerfile.read(dockerfile)
    assert image.final_base_image() == f"apache/airflow:{airflow[1]}-python{python[1]}"
    assert "requirements.txt" in image.copied_sources()


def test_the_build_context_carries_no_local_state_or_secret() -> None:
    for path in (
        ".env",
        ".env.example",
        ".venv/bin/python",
        ".local/airflow",
        "service-account.json",
        "x.key.json",
    ):
        assert dockerignored(path, ROOT), path
    assert not dockerignored("requirements.txt", ROOT)


# --- The deployment ------------------------------------------------------------------------


def test_airflow_runs_celery_on_redis_and_postgres_with_every_component(deployed: dict[str, Any]) -> None:
    assert deployment_problems(deployed, ROOT) == []


def test_the_ui_and_the_api_require_a_login(deployed: dict[str, Any]) -> None:
    assert auth_problems(deployed, ROOT) == []


def test_connections_reach_this_deployments_services(deployed: dict[str, Any]) -> None:
    assert connection_problems(deployed, ROOT) == []
    [api_server] = components(deployed, ROOT)["api-server"]
    defined = connections(deployed["services"][api_server])
    simulator_port = re.search(r"--port (\d+)", " ".join(deployed["services"]["simulator"]["command"]))
    assert simulator_port
    api, warehouse, smtp, scratch, csv_destination = (
        defined[conn_id] for conn_id in PIPELINE_CONNECTIONS[:5]
    )
    assert (api["conn_type"], api["host"]) == ("http", f"http://simulator:{simulator_port[1]}")
    assert (warehouse["conn_type"], warehouse["host"], warehouse["port"]) == ("postgres", "warehouse", 5432)
    # Test mode's scratch warehouse: the same server, another database, which its init script makes.
    assert (scratch["host"], scratch["port"]) == (warehouse["host"], warehouse["port"])
    assert scratch["schema"] != warehouse["schema"]
    init_scripts = [
        ROOT / volume.split(":")[0]
        for volume in deployed["services"]["warehouse"]["volumes"]
        if isinstance(volume, str) and volume.endswith(":/docker-entrypoint-initdb.d:ro")
    ]
    created = " ".join(path.read_text() for folder in init_scripts for path in folder.glob("*.sql"))
    assert f"CREATE DATABASE {scratch['schema']} OWNER {scratch['login']}" in created
    assert (smtp["conn_type"], smtp["host"], smtp["port"]) == ("smtp", "mailpit", 1025)
    # csv_folder_import's destination: the warehouse's own database, as its owner.
    fields = ("conn_type", "host", "port", "schema", "login", "password")
    assert {key: csv_destination.get(key) for key in fields} == {key: warehouse.get(key) for key in fields}
    assert csv_destination["login"] == deployed["services"]["warehouse"]["environment"]["POSTGRES_USER"]
    assert csv_destination["schema"] == deployed["services"]["warehouse"]["environment"]["POSTGRES_DB"]


def test_every_worker_reads_the_csv_drop_from_a_read_only_host_folder(deployed: dict[str, Any]) -> None:
    assert drop_folder_problems(deployed, ROOT, CSV_VARIABLE) == []
    workers = components(deployed, ROOT)["celery worker"]
    assert len(workers) >= 2
    sources = {
        volume.split(":")[0]
        for worker in workers
        for volume in deployed["services"][worker]["volumes"]
        if volume.endswith(":/opt/airflow/csv_drop:ro")
    }
    # One folder for all workers: a chunk may be imported by any of them.
    assert len(sources) == 1
    assert (ROOT / sources.pop()).is_dir()


def test_the_csv_import_variable_is_a_spec_the_pipeline_accepts(deployed: dict[str, Any]) -> None:
    [api_server] = components(deployed, ROOT)["api-server"]
    settings = json.loads(
        environment_of(deployed["services"][api_server])[f"AIRFLOW_VAR_{CSV_VARIABLE.upper()}"]
    )
    # Scheduled runs have empty params: the Variable alone must make a valid spec.
    spec = ImportSpec.from_params(settings, run_id="scheduled")
    assert spec.source == "file:///opt/airflow/csv_drop"
    assert spec.conn_id == CSV_DB_CONN_ID


def test_workers_and_the_triggerer_reach_the_usage_folders_of_one_host_folder(
    deployed: dict[str, Any],
) -> None:
    assert usage_folder_problems(deployed, ROOT, USAGE_VARIABLE) == []
    found = components(deployed, ROOT)
    services = found["celery worker"] + found["triggerer"]
    assert len(found["celery worker"]) >= 2
    assert found["triggerer"]
    sources = {
        volume.split(":")[0]
        for name in services
        for volume in deployed["services"][name]["volumes"]
        if volume.split(":")[1] == "/opt/airflow/usage"
    }
    # One folder for all: a range may be processed by any worker, the sensor waits in the triggerer.
    assert len(sources) == 1
    folder = ROOT / sources.pop()
    assert (folder / "incoming").is_dir()
    assert (folder / "archive").is_dir()


def test_the_usage_variable_is_a_spec_the_pipeline_accepts(deployed: dict[str, Any]) -> None:
    [api_server] = components(deployed, ROOT)["api-server"]
    service = deployed["services"][api_server]
    settings = json.loads(environment_of(service)[f"AIRFLOW_VAR_{USAGE_VARIABLE.upper()}"])
    # Scheduled runs (every five minutes) have empty params: the Variable alone must make a valid spec.
    spec = IngestSpec.from_params(settings, run_id="scheduled")
    assert (str(spec.incoming), str(spec.archive)) == (
        "/opt/airflow/usage/incoming",
        "/opt/airflow/usage/archive",
    )
    # Its store: the warehouse's database (schema usage_ingest), as csv_folder_import's destination.
    defined = connections(service)
    assert defined[spec.conn_id] == defined[USAGE_DB_CONN_ID] == defined[CSV_DB_CONN_ID]


def test_the_column_sums_variable_is_a_spec_the_pipeline_accepts_on_every_airflow_service(
    deployed: dict[str, Any],
) -> None:
    services = airflow_services(deployed, ROOT)
    for service in services.values():
        settings = json.loads(environment_of(service)[f"AIRFLOW_VAR_{SUMS_VARIABLE.upper()}"])
        # A request brings only its location: the Variable must make the rest of a valid spec.
        spec = SumsSpec.from_params({"location": "sample.csv", **settings}, task_id="request")
        assert str(spec.local_root) == "/opt/airflow/column_sums"
        # Results in the warehouse's database (schema column_sums), as the other pipelines' stores.
        defined = connections(service)
        assert defined[spec.conn_id] == defined[CSV_DB_CONN_ID]
        # s3:// locations through the deployment's S3 service.
        assert connection_host(defined[spec.aws_conn_id]) == "s3"


def test_workers_read_column_sums_files_read_only_and_from_s3_and_the_api_server_reads_results(
    deployed: dict[str, Any],
) -> None:
    assert _column_sums(deployed) == []
    workers = components(deployed, ROOT)["celery worker"]
    sources = {
        volume.split(":")[0]
        for worker in workers
        for volume in deployed["services"][worker]["volumes"]
        if volume.endswith(":/opt/airflow/column_sums:ro")
    }
    # One folder for all workers: a request may run on any of them.
    assert len(sources) == 1
    assert (ROOT / sources.pop()).is_dir()


def test_the_s3_service_is_the_moto_release_the_tests_run_against(deployed: dict[str, Any]) -> None:
    moto = re.search(r"^moto\[[^]]*\]==(\S+)", (ROOT / "requirements-dev.in").read_text(), re.MULTILINE)
    assert moto
    assert deployed["services"]["s3"]["image"] == f"motoserver/moto:{moto[1]}"


def test_the_relay_sends_to_the_receiver_which_keeps_its_keys_across_restarts(
    deployed: dict[str, Any],
) -> None:
    assert _receiver(deployed) == []
    [api_server] = components(deployed, ROOT)["api-server"]
    defined = connections(deployed["services"][api_server])
    receiver = defined[RELAY_RECEIVER_CONN_ID]
    assert (receiver["conn_type"], receiver["host"], receiver["schema"]) == (
        "http",
        "profile-receiver",
        "http",
    )
    # The relay's queue: the warehouse's database (schema profile_relay), as the other pipelines'.
    assert defined[RELAY_DB_CONN_ID] == defined[CSV_DB_CONN_ID]


def test_the_services_on_the_plain_python_image_run_on_the_standard_library_and_their_mounts(
    deployed: dict[str, Any], tmp_path: Path
) -> None:
    """The simulator and the receiver run on ``python:*`` with only their source mounted: a module
    that imports a package from the project's virtualenv (or code that is not mounted) would
    crash there, which no check of the file alone can see."""
    started = {}
    for name, service in deployed["services"].items():
        words = service.get("command") or []
        if str(service.get("image", "")).startswith("python:") and words[:2] == ["python", "-m"]:
            started[name] = (words[2], service)
    assert {module for module, _ in started.values()} >= {"devservices.simulator", RECEIVER_MODULE}
    for name, (module, service) in started.items():
        # The container's project folder: only what the service mounts into it.
        project = tmp_path / name
        project.mkdir()
        for volume in service.get("volumes") or []:
            source, target = volume.split(":")[:2]
            if source.startswith(".") and target.startswith(service["working_dir"] + "/"):
                (project / target.removeprefix(service["working_dir"] + "/")).symlink_to(ROOT / source)
        # -I -S: no PYTHONPATH, no site-packages; only the standard library and that folder.
        probe = (
            f"import importlib, sys; sys.path.insert(0, {str(project)!r}); "
            f"module = importlib.import_module({module!r}); "
            f"hasattr(module, '__path__') and importlib.import_module({module!r} + '.__main__')"
        )
        completed = subprocess.run(
            [sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, check=False
        )
        assert completed.returncode == 0, f"services.{name}: {completed.stderr.strip().splitlines()[-1]}"


def test_the_simulator_accepts_the_credentials_the_api_connection_sends(deployed: dict[str, Any]) -> None:
    [api_server] = components(deployed, ROOT)["api-server"]
    api = connections(deployed["services"][api_server])[API_CONN_ID]
    simulator = environment_of(deployed["services"]["simulator"])
    assert simulator[SIMULATOR_ENV_PREFIX + "CLIENT"] == api["login"]
    assert simulator[SIMULATOR_ENV_PREFIX + "CLIENT_KEY"] == api["password"]


def test_every_airflow_service_has_the_pipelines_connections_and_variables(deployed: dict[str, Any]) -> None:
    assert pipeline_environment_problems(deployed, ROOT, PIPELINE_CONNECTIONS, PIPELINE_VARIABLES) == []
    [api_server] = components(deployed, ROOT)["api-server"]
    env = environment_of(deployed["services"][api_server])
    # The values must also be what the pipeline's own parsers accept.
    settings = parse_report_settings(env[f"AIRFLOW_VAR_{REPORT_VARIABLE.upper()}"])
    assert parse_recipients(settings.recipients)
    assert parse_recipients(env[f"AIRFLOW_VAR_{ALERT_RECIPIENTS_VARIABLE.upper()}"])


def test_tasks_keep_the_production_retry_policy(deployed: dict[str, Any]) -> None:
    assert retry_problems(deployed, ROOT, retries=TASK_RETRIES, delay_seconds=RETRY_DELAY_SECONDS) == []


def test_the_warehouse_holds_a_days_wal_without_forced_checkpoints(deployed: dict[str, Any]) -> None:
    assert warehouse_problems(deployed, DB_CONN_ID, day_wal_bytes=DAY_WAL_BYTES) == []


# --- Each check fails on a broken copy ----------------------------------------------------


def _set_env(document: dict[str, Any], service: str, key: str, value: str | None) -> None:
    """Change one service's environment only (the anchor shares one mapping among them all)."""
    environment = dict(document["services"][service]["environment"])
    if value is None:
        del environment[key]
    else:
        environment[key] = value
    document["services"][service]["environment"] = environment


def _set_conn(document: dict[str, Any], service: str, conn_id: str, **fields: Any) -> None:
    key = f"AIRFLOW_CONN_{conn_id.upper()}"
    connection = json.loads(document["services"][service]["environment"][key]) | fields
    _set_env(document, service, key, json.dumps(connection))


def _on_all_airflow_services(key: str, value: str) -> Callable[[dict[str, Any]], None]:
    def mutate(document: dict[str, Any]) -> None:
        for name, service in document["services"].items():
            if "build" in service:
                _set_env(document, name, key, value)

    return mutate


def _deployed_check(
    check: Callable[..., list[str]], *args: Any
) -> Callable[[dict[str, Any], dict[str, str]], Any]:
    return lambda raw, env: check(interpolate(raw, env).document, *args)


def _undefined(raw: dict[str, Any], env: dict[str, str]) -> set[str]:
    return interpolate(raw, env).undefined


def _invalid(raw: dict[str, Any], env: dict[str, str]) -> list[str]:
    return interpolate(raw, env).invalid


def _secrets(raw: dict[str, Any], env: dict[str, str]) -> list[str]:
    return secret_problems(raw)[0]


def _pipeline(document: dict[str, Any]) -> list[str]:
    return pipeline_environment_problems(document, ROOT, PIPELINE_CONNECTIONS, PIPELINE_VARIABLES)


def _warehouse(document: dict[str, Any]) -> list[str]:
    return warehouse_problems(document, DB_CONN_ID, day_wal_bytes=DAY_WAL_BYTES)


def _drop_folder(document: dict[str, Any]) -> list[str]:
    return drop_folder_problems(document, ROOT, CSV_VARIABLE)


def _usage_folders(document: dict[str, Any]) -> list[str]:
    return usage_folder_problems(document, ROOT, USAGE_VARIABLE)


def _column_sums(document: dict[str, Any]) -> list[str]:
    return column_sums_problems(
        document,
        ROOT,
        SUMS_VARIABLE,
        default_conn_id=SUMS_DEFAULT_CONN_ID,
        default_aws_conn_id=SUMS_DEFAULT_AWS_CONN_ID,
    )


def _receiver(document: dict[str, Any]) -> list[str]:
    return receiver_problems(
        document, ROOT, RELAY_RECEIVER_CONN_ID, module=RECEIVER_MODULE, token_variable=RECEIVER_TOKEN_VARIABLE
    )


def _receiver_command(change: Callable[[list[str]], list[str]]) -> Callable[[dict[str, Any]], None]:
    def mutate(document: dict[str, Any]) -> None:
        service = document["services"]["profile-receiver"]
        service["command"] = change(list(service["command"]))

    return mutate


def _worker_volumes(
    worker: str, change: Callable[[list[Any]], list[Any]]
) -> Callable[[dict[str, Any]], None]:
    def mutate(document: dict[str, Any]) -> None:
        service = document["services"][worker]
        service["volumes"] = change(list(service["volumes"]))

    return mutate


def _without_dependency(service: str, dependency: str) -> Callable[[dict[str, Any]], None]:
    """A breakage: ``service`` no longer waits for ``dependency``."""

    def breaks(document: dict[str, Any]) -> None:
        depends_on = document["services"][service]["depends_on"]
        document["services"][service]["depends_on"] = {
            name: spec for name, spec in depends_on.items() if name != dependency
        }

    return breaks


def _unmounted(worker: str, folder: str) -> Callable[[dict[str, Any]], None]:
    """``worker`` without the volumes that mount ``folder`` (or a folder inside it)."""
    return _worker_volumes(worker, lambda volumes: [v for v in volumes if folder not in v])


def _retries(document: dict[str, Any]) -> list[str]:
    return retry_problems(document, ROOT, retries=TASK_RETRIES, delay_seconds=RETRY_DELAY_SECONDS)


BROKEN = [
    pytest.param(
        lambda d: d["services"]["redis"].update(image="redis:latest"),
        _deployed_check(unpinned_images, ROOT),
        "redis:latest",
        id="image-latest",
    ),
    pytest.param(
        lambda d: d["services"]["postgres"].update(image="postgres:16"),
        _deployed_check(unpinned_images, ROOT),
        "postgres:16",
        id="image-bare-major",
    ),
    pytest.param(
        lambda d: d["services"]["redis"].update(image="redis:7.2-bookworm"),
        _deployed_check(unpinned_images, ROOT),
        "line of releases",
        id="image-minor-line",
    ),
    pytest.param(
        lambda d: d["services"]["mailpit"].update(image="axllent/mailpit"),
        _deployed_check(unpinned_images, ROOT),
        "no tag",
        id="image-untagged",
    ),
    pytest.param(
        lambda d: _set_env(d, "mailpit", "MP_MAX_MESSAGES", "${COMPOSE_NO_SUCH_SETTING}"),
        _undefined,
        "COMPOSE_NO_SUCH_SETTING",
        id="env-var-undefined",
    ),
    pytest.param(
        lambda d: d["services"]["airflow-init"].update(command=["-c", "chown $(id -u) /opt/airflow/logs"]),
        _invalid,
        "lone $",
        id="unescaped-shell-dollar",
    ),
    pytest.param(
        lambda d: d["services"]["simulator"].update(volumes=["./no-such-dir:/opt/project/devservices:ro"]),
        _deployed_check(missing_paths, ROOT),
        "./no-such-dir does not exist",
        id="bind-mount-missing",
    ),
    pytest.param(
        lambda d: d["services"]["airflow-scheduler"].update(volumes=["airflow-log:/opt/airflow/logs"]),
        _deployed_check(missing_paths, ROOT),
        "airflow-log is not declared",
        id="named-volume-undeclared",
    ),
    pytest.param(
        lambda d: d["services"]["simulator"].update(env_file=["deploy.env"]),
        _deployed_check(missing_paths, ROOT),
        "deploy.env does not exist",
        id="env-file-missing",
    ),
    pytest.param(
        lambda d: d["services"]["redis"].update(healtcheck=d["services"]["redis"].pop("healthcheck")),
        _deployed_check(schema_errors),
        "healtcheck",
        id="schema-misspelt-key",
    ),
    pytest.param(
        lambda d: d["services"]["mailpit"].update(ports=["127.0.0.1:80250:8025"]),
        _deployed_check(port_errors),
        "out of range",
        id="port-out-of-range",
    ),
    pytest.param(
        lambda d: _set_env(d, "warehouse", "POSTGRES_PASSWORD", "hunter2"),
        _secrets,
        "services.warehouse.environment.POSTGRES_PASSWORD",
        id="secret-hard-coded",
    ),
    pytest.param(
        lambda d: _set_env(
            d, "airflow-scheduler", "AIRFLOW__CELERY__BROKER_URL", "redis://:hunter2@redis:6379/0"
        ),
        _secrets,
        "URL password",
        id="secret-in-url",
    ),
    pytest.param(
        lambda d: _set_conn(d, "airflow-worker-1", DB_CONN_ID, password="hunter2"),
        _secrets,
        "password field",
        id="secret-in-connection",
    ),
    pytest.param(
        lambda d: _set_env(
            d, "airflow-scheduler", "AIRFLOW__CORE__FERNET_KEY", "${COMPOSE_FERNET_KEY:-changeme}"
        ),
        _secrets,
        "COMPOSE_FERNET_KEY",
        id="secret-with-default",
    ),
    pytest.param(
        lambda d: d["services"]["redis"].update(command=["redis-server", "--requirepass", "hunter2"]),
        _secrets,
        "requirepass",
        id="secret-in-command",
    ),
    pytest.param(
        _on_all_airflow_services("AIRFLOW__CORE__EXECUTOR", "LocalExecutor"),
        _deployed_check(deployment_problems, ROOT),
        "is not CeleryExecutor",
        id="executor-local",
    ),
    pytest.param(
        _on_all_airflow_services("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite:////opt/airflow/airflow.db"),
        _deployed_check(deployment_problems, ROOT),
        "SQL_ALCHEMY_CONN does not point at a Postgres service",
        id="metadata-sqlite",
    ),
    pytest.param(
        lambda d: _set_env(d, "airflow-worker-2", "AIRFLOW__API_AUTH__JWT_SECRET", "another"),
        _deployed_check(deployment_problems, ROOT),
        "JWT_SECRET differs",
        id="jwt-secret-differs",
    ),
    pytest.param(
        lambda d: d["services"].pop("airflow-worker-2"),
        _deployed_check(deployment_problems, ROOT),
        "1 Celery worker",
        id="one-worker",
    ),
    pytest.param(
        lambda d: d["services"]["airflow-worker-2"].update(hostname="airflow-worker-1"),
        _deployed_check(deployment_problems, ROOT),
        "distinct hostnames",
        id="workers-same-hostname",
    ),
    pytest.param(
        lambda d: d["services"].pop("airflow-triggerer"),
        _deployed_check(deployment_problems, ROOT),
        "airflow triggerer",
        id="no-triggerer",
    ),
    pytest.param(
        lambda d: d["services"]["airflow-apiserver"].update(
            depends_on={
                **d["services"]["airflow-apiserver"]["depends_on"],
                "airflow-init": {"condition": "service_started"},
            }
        ),
        _deployed_check(deployment_problems, ROOT),
        "does not wait for an init job",
        id="init-not-awaited",
    ),
    pytest.param(
        lambda d: d["services"]["redis"].pop("healthcheck"),
        _deployed_check(deployment_problems, ROOT),
        "services.redis: no healthcheck",
        id="redis-without-healthcheck",
    ),
    pytest.param(
        lambda d: d["services"]["airflow-scheduler"].update(env_file=[".env"]),
        _deployed_check(deployment_problems, ROOT),
        "local settings",
        id="loads-local-env",
    ),
    pytest.param(
        lambda d: _set_env(d, "airflow-apiserver", "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True"),
        _deployed_check(auth_problems, ROOT),
        "turns login off",
        id="all-admins",
    ),
    pytest.param(
        lambda d: d["services"]["airflow-apiserver"].update(
            volumes=d["services"]["airflow-apiserver"]["volumes"][:-1]
        ),
        _deployed_check(auth_problems, ROOT),
        "not on a named volume shared with the init job",
        id="passwords-file-not-shared",
    ),
    pytest.param(
        lambda d: _set_conn(d, "airflow-worker-1", DB_CONN_ID, host="127.0.0.1"),
        _deployed_check(connection_problems, ROOT),
        "'127.0.0.1' is not a service",
        id="connection-to-localhost",
    ),
    pytest.param(
        lambda d: _set_conn(d, "airflow-worker-1", DB_CONN_ID, host="postgres"),
        _deployed_check(connection_problems, ROOT),
        "metadata database",
        id="warehouse-is-metadata-db",
    ),
    pytest.param(
        lambda d: _set_env(d, "airflow-worker-1", f"AIRFLOW_VAR_{ALERT_RECIPIENTS_VARIABLE.upper()}", None),
        _deployed_check(_pipeline),
        f"AIRFLOW_VAR_{ALERT_RECIPIENTS_VARIABLE.upper()} is not set",
        id="variable-missing",
    ),
    pytest.param(
        lambda d: _set_env(d, "airflow-worker-1", f"AIRFLOW_CONN_{API_CONN_ID.upper()}", None),
        _deployed_check(_pipeline),
        f"AIRFLOW_CONN_{API_CONN_ID.upper()} is not set",
        id="connection-missing",
    ),
    pytest.param(
        _unmounted("airflow-worker-2", "/opt/airflow/csv_drop"),
        _deployed_check(_drop_folder),
        "services.airflow-worker-2: nothing is mounted at /opt/airflow/csv_drop",
        id="drop-not-mounted-in-a-worker",
    ),
    pytest.param(
        _worker_volumes(
            "airflow-worker-1",
            lambda volumes: [v.removesuffix(":ro") if "csv_drop" in v else v for v in volumes],
        ),
        _deployed_check(_drop_folder),
        "mounted read-write",
        id="drop-mounted-read-write",
    ),
    pytest.param(
        _worker_volumes(
            "airflow-worker-1",
            lambda volumes: [
                v if "csv_drop" not in v else "airflow-reports:/opt/airflow/csv_drop:ro" for v in volumes
            ],
        ),
        _deployed_check(_drop_folder),
        "is a volume, not a host folder",
        id="drop-on-a-named-volume",
    ),
    pytest.param(
        _on_all_airflow_services(f"AIRFLOW_VAR_{CSV_VARIABLE.upper()}", '{"source": "/data/drops"}'),
        _deployed_check(_drop_folder),
        "nothing is mounted at /data/drops",
        id="variable-source-not-mounted",
    ),
    pytest.param(
        _unmounted("airflow-worker-2", "/opt/airflow/usage"),
        _deployed_check(_usage_folders),
        "services.airflow-worker-2: nothing is mounted at /opt/airflow/usage/incoming",
        id="usage-folder-not-mounted-in-a-worker",
    ),
    pytest.param(
        _worker_volumes(
            "airflow-worker-1",
            lambda volumes: [v + ":ro" if v.endswith(":/opt/airflow/usage") else v for v in volumes],
        ),
        _deployed_check(_usage_folders),
        "/opt/airflow/usage/archive is mounted read-only",
        id="usage-folder-read-only-in-a-worker",
    ),
    pytest.param(
        _worker_volumes(
            "airflow-worker-1",
            lambda volumes: [
                *(v for v in volumes if not v.endswith(":/opt/airflow/usage")),
                "./docker/usage/incoming:/opt/airflow/usage/incoming",
                "./docker/usage/archive:/opt/airflow/usage/archive",
            ],
        ),
        _deployed_check(_usage_folders),
        "incoming and archive are two mounts",
        id="usage-incoming-and-archive-two-mounts",
    ),
    pytest.param(
        _unmounted("airflow-triggerer", "/opt/airflow/usage"),
        _deployed_check(_usage_folders),
        "services.airflow-triggerer: nothing is mounted at /opt/airflow/usage/incoming",
        id="usage-folder-not-mounted-in-the-triggerer",
    ),
    pytest.param(
        _on_all_airflow_services(f"AIRFLOW_VAR_{USAGE_VARIABLE.upper()}", '{"incoming": "/data/usage"}'),
        _deployed_check(_usage_folders),
        "is not a JSON object with an incoming and an archive",
        id="usage-variable-without-archive",
    ),
    pytest.param(
        lambda d: _set_conn(d, "airflow-worker-2", RELAY_RECEIVER_CONN_ID, port=8765),
        _deployed_check(_receiver),
        "is not the port profile-receiver listens on",
        id="receiver-wrong-port",
    ),
    pytest.param(
        lambda d: _set_conn(d, "airflow-worker-1", RELAY_RECEIVER_CONN_ID, host="simulator"),
        _deployed_check(_receiver),
        f"does not run {RECEIVER_MODULE}",
        id="receiver-connection-to-another-service",
    ),
    pytest.param(
        lambda d: _set_env(d, "profile-receiver", RECEIVER_TOKEN_VARIABLE, "another-token"),
        _deployed_check(_receiver),
        "its password is not the token profile-receiver requires",
        id="receiver-token-differs",
    ),
    pytest.param(
        lambda d: d["services"]["profile-receiver"].update(
            volumes=[
                v for v in d["services"]["profile-receiver"]["volumes"] if "profile-receiver-data" not in v
            ]
        ),
        _deployed_check(_receiver),
        "is not on a named volume",
        id="receiver-store-in-the-container",
    ),
    pytest.param(
        _receiver_command(lambda words: words[: words.index("--store")]),
        _deployed_check(_receiver),
        "no --store",
        id="receiver-without-store",
    ),
    pytest.param(
        _without_dependency("airflow-worker-2", "profile-receiver"),
        _deployed_check(_receiver),
        "airflow-worker-2: does not wait for profile-receiver",
        id="worker-does-not-wait-for-the-receiver",
    ),
    pytest.param(
        _unmounted("airflow-worker-1", "/opt/airflow/column_sums"),
        _deployed_check(_column_sums),
        "airflow-worker-1: nothing is mounted at /opt/airflow/column_sums",
        id="column-sums-root-not-mounted",
    ),
    pytest.param(
        _worker_volumes(
            "airflow-worker-2",
            lambda volumes: [v.removesuffix(":ro") if "column_sums" in str(v) else v for v in volumes],
        ),
        _deployed_check(_column_sums),
        "airflow-worker-2: /opt/airflow/column_sums is mounted read-write",
        id="column-sums-root-read-write",
    ),
    pytest.param(
        lambda d: _set_env(d, "airflow-apiserver", "AIRFLOW_CONN_WAREHOUSE_DB", None),
        _deployed_check(_column_sums),
        "airflow-apiserver: the results' connection warehouse_db",
        id="api-server-cannot-read-results",
    ),
    pytest.param(
        lambda d: _set_env(d, "airflow-worker-1", "AIRFLOW_CONN_COLUMN_SUMS_S3", None),
        _deployed_check(_column_sums),
        "airflow-worker-1: the S3 connection column_sums_s3",
        id="worker-without-s3-connection",
    ),
    pytest.param(
        _without_dependency("airflow-worker-2", "s3"),
        _deployed_check(_column_sums),
        "airflow-worker-2: does not wait for s3",
        id="worker-does-not-wait-for-s3",
    ),
    pytest.param(
        lambda d: _set_env(
            d,
            "airflow-worker-1",
            "AIRFLOW_CONN_COLUMN_SUMS_S3",
            '{"conn_type": "aws", "extra": {"endpoint_url": "http://minio:9000"}}',
        ),
        _deployed_check(connection_problems, ROOT),
        "host 'minio' is not a service",
        id="s3-endpoint-elsewhere",
    ),
    pytest.param(
        lambda d: _set_conn(d, "airflow-worker-2", CSV_DB_CONN_ID, host="postgres"),
        _deployed_check(connection_problems, ROOT),
        "metadata database",
        id="csv-destination-is-metadata-db",
    ),
    pytest.param(
        _on_all_airflow_services("AIRFLOW__PIPELINES__TASK_RETRIES", "1"),
        _deployed_check(_retries),
        "below production's",
        id="fail-fast-retries",
    ),
    pytest.param(
        lambda d: d["services"]["warehouse"].pop("command"),
        _deployed_check(_warehouse),
        "max_wal_size=1GB (default) is below a day's WAL",
        id="warehouse-default-max-wal-size",
    ),
]


@pytest.mark.parametrize(("mutate", "check", "expected"), BROKEN)
def test_each_check_reports_a_broken_copy(
    raw: dict[str, Any],
    operator_env: dict[str, str],
    mutate: Callable[[dict[str, Any]], None],
    check: Callable[[dict[str, Any], dict[str, str]], Any],
    expected: str,
) -> None:
    assert not any(expected in str(problem) for problem in check(raw, operator_env)), "fine before breaking"
    broken = copy.deepcopy(raw)
    mutate(broken)
    problems = check(broken, operator_env)
    assert any(expected in str(problem) for problem in problems), problems


def test_an_unpinned_base_image_or_an_ignored_copy_source_is_reported(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("apache-airflow==3.3.2\n")
    (tmp_path / "Dockerfile").write_text("FROM apache/airflow:latest\nCOPY requirements.txt lock.txt /\n")
    (tmp_path / ".dockerignore").write_text("*\n")
    document = {"services": {"airflow": {"build": {"context": "."}}}}
    assert unpinned_images(document, tmp_path) == [
        "Dockerfile: FROM apache/airflow:latest: tag 'latest' is not a version"
    ]
    assert missing_paths(document, tmp_path) == [
        "Dockerfile: COPY source requirements.txt is in .dockerignore",
        "Dockerfile: COPY source lock.txt does not exist",
    ]


def test_a_duplicate_key_is_refused_as_compose_refuses_it(tmp_path: Path) -> None:
    path = tmp_path / "docker-compose.yaml"
    path.write_text("services:\n  redis:\n    image: redis:7.2.16\n    image: redis:latest\n")
    with pytest.raises(ValueError, match="duplicate key 'image'"):
        load_compose(path)
