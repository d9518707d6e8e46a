"""Checks of a docker-compose document that need no Docker engine.

Each check is a plain function returning a list of problems (empty: fine), so that a test can
run it on the real file and on deliberately broken copies alike. The document is the YAML as
loaded (anchors and ``<<`` merges resolved, as Compose resolves them); :func:`interpolate`
substitutes ``${VAR}`` references the way Compose does. Checks of *values* (connections, URLs,
ports) run on the interpolated document; checks of *where values come from* (secrets) run on
the raw one.
"""

from __future__ import annotations

import importlib.resources
import ipaddress
import json
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cache
from itertools import pairwise
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import yaml
from dotenv import dotenv_values

from include.maintenance.metadata import METADATA_DB_CONN_ID

AIRFLOW_BASE_IMAGE = "apache/airflow"
CELERY_EXECUTOR = "CeleryExecutor"
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
# The commands that start each Airflow component (after the image's `airflow` entrypoint).
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer", "celery worker")
MIN_WORKERS = 2
# What Airflow's conf.getboolean reads as False.
FALSE = frozenset({"false", "f", "0"})
# PostgreSQL (10+) numbers releases MAJOR.MINOR: 16.15 is one exact release. Everything else
# here uses MAJOR.MINOR.PATCH, where a MAJOR.MINOR tag is a moving line of releases.
TWO_PART_VERSIONS = frozenset({"postgres"})
# A published/exposed port; the schema accepts any string, Compose does not.
PORT_SPEC = re.compile(
    r"^(?:(?P<ip>\[[0-9a-fA-F:.]+\]|\d+\.\d+\.\d+\.\d+):)?"
    r"(?:(?P<host>\d+(?:-\d+)?)?:)?"
    r"(?P<container>\d+(?:-\d+)?)(?:/(?P<proto>tcp|udp|sctp))?$"
)
# Setting names that carry a secret, unless they name a file or command that yields one.
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|FERNET|_KEY$|_AUTH$", re.IGNORECASE)
NOT_A_SECRET = re.compile(r"_(FILE|PATH|CMD)$", re.IGNORECASE)
SECRET_FLAG = re.compile(r"^--?(requirepass|password|passwd|pass|secret|token)(=(?P<value>.*))?$")
URL_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^:/@\s]*:(?P<password>[^@/\s]+)@", re.IGNORECASE)
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"


# --- Loading --------------------------------------------------------------------------------


def load_compose(path: Path) -> dict[str, Any]:
    """The document as Compose sees it: anchors and ``<<`` merges resolved."""
    text = path.read_text(encoding="utf-8")
    _reject_duplicate_keys(yaml.compose(text, Loader=yaml.SafeLoader))
    return yaml.safe_load(text)


def _reject_duplicate_keys(node: yaml.Node | None, seen: set[int] | None = None) -> None:
    """PyYAML keeps the last of two equal keys silently; Compose refuses the file."""
    seen = set() if seen is None else seen
    if node is None or id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        keys = [key.value for key, _ in node.value if key.tag != "tag:yaml.org,2002:merge"]
        for key in {key for key in keys if keys.count(key) > 1}:
            raise ValueError(f"duplicate key {key!r} in the mapping at {node.start_mark}")
        for _, value in node.value:
            _reject_duplicate_keys(value, seen)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _reject_duplicate_keys(item, seen)


def read_env_file(path: Path) -> dict[str, str]:
    """An env file as Compose reads ``.env`` (a key with no value is defined and empty)."""
    return {key: value or "" for key, value in dotenv_values(path).items()}


@cache
def compose_schema() -> dict[str, Any]:
    """The Compose specification's JSON schema, as vendored by the pinned check-jsonschema."""
    resource = importlib.resources.files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json"
    return json.loads(resource.read_text(encoding="utf-8"))


# --- Interpolation --------------------------------------------------------------------------


@dataclass
class Interpolation:
    """What substituting an env file into a document found besides the result."""

    document: Any = None
    # Referenced with no default and not defined at all: Compose would use "" (or stop on `?`).
    undefined: set[str] = field(default_factory=set)
    # `${VAR:?...}` with VAR defined but empty: Compose refuses to start.
    required_empty: set[str] = field(default_factory=set)
    # Templates Compose cannot parse, e.g. a shell `$(...)` that should be written `$$(...)`.
    invalid: list[str] = field(default_factory=list)


def interpolate(document: Any, env: Mapping[str, str]) -> Interpolation:
    """Substitute ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``,
    ``${VAR:?message}``, ``${VAR?message}``, ``${VAR:+alternative}``, ``${VAR+alternative}`` and
    ``$$`` in every string value (not keys), nested defaults included, as Compose does.
    """
    report = Interpolation()
    report.document = _interpolate_node(document, env, report, "")
    return report


def _interpolate_node(node: Any, env: Mapping[str, str], report: Interpolation, where: str) -> Any:
    if isinstance(node, dict):
        return {key: _interpolate_node(value, env, report, f"{where}.{key}") for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolate_node(value, env, report, f"{where}[{i}]") for i, value in enumerate(node)]
    if isinstance(node, str):
        return _interpolate_text(node, env, report, where.lstrip("."))
    return node


def _interpolate_text(text: str, env: Mapping[str, str], report: Interpolation, where: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        dollar = text.find("$", i)
        if dollar < 0:
            out.append(text[i:])
            break
        out.append(text[i:dollar])
        rest = text[dollar + 1 :]
        if rest.startswith("$"):
            out.append("$")
            i = dollar + 2
        elif match := re.match(_NAME, rest):
            out.append(_substitute(match.group(), "", "", env, report, where))
            i = dollar + 1 + match.end()
        elif rest.startswith("{"):
            end = _closing_brace(text, dollar + 2)
            if end is None:
                report.invalid.append(f"{where}: unclosed ${{ in {text!r}")
                return text
            out.append(_braced(text[dollar + 2 : end], env, report, where))
            i = end + 1
        else:
            report.invalid.append(f"{where}: a lone $ (write $$ for a literal one) in {text!r}")
            out.append("$")
            i = dollar + 1
    return "".join(out)


def _closing_brace(text: str, start: int) -> int | None:
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("$$", i):
            i += 2
            continue
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def _braced(inner: str, env: Mapping[str, str], report: Interpolation, where: str) -> str:
    match = re.fullmatch(rf"(?P<name>{_NAME})(?:(?P<op>:?[-?+])(?P<arg>.*))?", inner, re.DOTALL)
    if match is None:
        report.invalid.append(f"{where}: invalid template ${{{inner}}}")
        return ""
    return _substitute(match["name"], match["op"] or "", match["arg"] or "", env, report, where)


def _substitute(
    name: str, op: str, arg: str, env: Mapping[str, str], report: Interpolation, where: str
) -> str:
    defined = name in env
    value = env[name] if defined else ""
    # With a colon the operator treats an empty value like an unset one.
    present = bool(value) if op.startswith(":") else defined
    kind = op[-1:]
    if kind == "-":
        return value if present else _interpolate_text(arg, env, report, where)
    if kind == "+":
        return _interpolate_text(arg, env, report, where) if present else ""
    if not defined:
        report.undefined.add(name)
    elif kind == "?" and not present:
        report.required_empty.add(name)
    return value


def references(document: Any) -> Iterator[tuple[str, str]]:
    """Every ``(variable, operator)`` referenced in the document's strings, nested ones too."""
    for text in _strings(document):
        yield from _references_in(text)


def _references_in(text: str) -> Iterator[tuple[str, str]]:
    for match in re.finditer(
        rf"(?<!\$)(?:\$\$)*\$(?:(?P<bare>{_NAME})|{{(?P<name>{_NAME})(?P<op>:?[-?+])?)", text
    ):
        yield match["bare"] or match["name"], match["op"] or ""


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


# --- Schema ---------------------------------------------------------------------------------


def schema_errors(document: Any) -> list[str]:
    """Violations of the Compose specification (draft 2020-12: `unevaluatedProperties` catches
    misspelt keys such as ``healtcheck``, which an older-draft validator would let through)."""
    schema = compose_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    errors = validator_class(schema).iter_errors(document)
    return sorted(f"{error.json_path}: {error.message}" for error in errors)


def port_errors(document: Mapping[str, Any]) -> list[str]:
    """Port mappings that Compose would reject (the schema accepts any string)."""
    problems = []
    for name, service in _services(document):
        for key in ("ports", "expose"):
            for spec in service.get(key) or []:
                if isinstance(spec, dict):
                    continue
                match = PORT_SPEC.match(str(spec))
                if match is None or (key == "expose" and (match["ip"] or match["host"])):
                    problems.append(f"services.{name}.{key}: {spec!r} is not a port mapping")
                    continue
                numbers = re.findall(r"\d+", f"{match['host'] or ''}-{match['container']}")
                if not all(1 <= int(number) <= 65535 for number in numbers):
                    problems.append(f"services.{name}.{key}: {spec!r} has a port out of range")
                if match["ip"]:
                    try:
                        ipaddress.ip_address(match["ip"].strip("[]"))
                    except ValueError:
                        problems.append(f"services.{name}.{key}: {spec!r} binds an invalid address")
    return problems


# --- Files ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dockerfile:
    """What these checks need of a Dockerfile: its base images and what it copies in."""

    path: Path
    # (instruction, arguments) in order, continuation lines joined, comments dropped.
    instructions: tuple[tuple[str, str], ...]

    @classmethod
    def read(cls, path: Path) -> Dockerfile:
        joined = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
        instructions = []
        for line in joined.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                instruction, _, arguments = line.partition(" ")
                instructions.append((instruction.upper(), arguments.strip()))
        return cls(path, tuple(instructions))

    def base_images(self) -> list[str]:
        """External images of FROM lines (earlier stages referenced by name are not images)."""
        stages: set[str] = set()
        images = []
        for instruction, arguments in self.instructions:
            if instruction != "FROM":
                continue
            words = [word for word in arguments.split() if not word.startswith("--")]
            if words[0] not in stages and words[0] != "scratch":
                images.append(words[0])
            if len(words) == 3 and words[1].upper() == "AS":
                stages.add(words[2])
        return images

    def final_base_image(self) -> str:
        return self.base_images()[-1]

    def copied_sources(self) -> list[str]:
        """Sources COPY/ADD take from the build context (not from other stages or URLs)."""
        sources = []
        for instruction, arguments in self.instructions:
            if instruction not in {"COPY", "ADD"}:
                continue
            words = json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)
            if any(word.startswith("--from=") for word in words):
                continue
            words = [word for word in words if not word.startswith("--")]
            sources += [word for word in words[:-1] if "://" not in word]
        return sources


def build_of(service: Mapping[str, Any], root: Path) -> tuple[Path, Path] | None:
    """(context, Dockerfile) of a service that is built, None for one that pulls its image."""
    build = service.get("build")
    if build is None:
        return None
    if isinstance(build, str):
        build = {"context": build}
    context = root / build.get("context", ".")
    return context, context / build.get("dockerfile", "Dockerfile")


def dockerignored(relative: str, context: Path) -> bool:
    """Whether .dockerignore keeps ``relative`` out of the build context (last match wins;
    excluding a directory excludes what is in it)."""
    ignore_file = context / ".dockerignore"
    if not ignore_file.exists():
        return False
    candidates = [
        str(p) for p in (PurePosixPath(relative), *PurePosixPath(relative).parents) if str(p) != "."
    ]
    ignored = False
    for line in ignore_file.read_text(encoding="utf-8").splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").strip().lstrip("/").replace("**/", "*")
        if any(fnmatchcase(candidate, pattern) for candidate in candidates):
            ignored = not negate
    return ignored


def missing_paths(document: Mapping[str, Any], root: Path) -> list[str]:
    """Local files the deployment needs that are absent: build contexts, Dockerfiles, what they
    COPY (and whether .dockerignore lets it through), bind-mount sources, env files, file-based
    secrets and configs. Also named volumes that are not declared."""
    problems = []
    declared_volumes = set(document.get("volumes") or {})
    for name, service in _services(document):
        where = f"services.{name}"
        if (build := build_of(service, root)) is not None:
            context, dockerfile = build
            if not context.is_dir():
                problems.append(f"{where}.build: context {_relative(context, root)} does not exist")
            elif not dockerfile.is_file():
                problems.append(f"{where}.build: {_relative(dockerfile, root)} does not exist")
            else:
                for source in Dockerfile.read(dockerfile).copied_sources():
                    if not (context / source).exists():
                        problems.append(f"{_relative(dockerfile, root)}: COPY source {source} does not exist")
                    elif dockerignored(source, context):
                        problems.append(
                            f"{_relative(dockerfile, root)}: COPY source {source} is in .dockerignore"
                        )
        for volume in service.get("volumes") or []:
            kind, source = _mount_source(volume)
            if kind == "bind" and not _local(source, root).exists():
                problems.append(f"{where}.volumes: bind-mount source {source} does not exist")
            elif kind == "volume" and source and source not in declared_volumes:
                problems.append(f"{where}.volumes: named volume {source} is not declared under volumes:")
        for path, required in _env_files(service):
            if required and not _local(path, root).is_file():
                problems.append(f"{where}.env_file: {path} does not exist")
    for section in ("secrets", "configs"):
        for name, definition in (document.get(section) or {}).items():
            if "file" in (definition or {}) and not _local(definition["file"], root).exists():
                problems.append(f"{section}.{name}: {definition['file']} does not exist")
    return problems


def _mount_source(volume: str | Mapping[str, Any]) -> tuple[str, str]:
    if isinstance(volume, Mapping):
        return volume.get("type", "volume"), str(volume.get("source") or "")
    parts = volume.split(":")
    if len(parts) == 1:  # an anonymous volume: only a container path
        return "volume", ""
    source = parts[0]
    return ("bind" if source.startswith((".", "/", "~")) else "volume"), source


def _local(path: str, root: Path) -> Path:
    return Path(path).expanduser() if path.startswith(("/", "~")) else root / path


def _relative(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


# --- Images ---------------------------------------------------------------------------------


def image_pin_problem(reference: str) -> str | None:
    """Why an image reference does not name one exact release (None when it does)."""
    if "@sha256:" in reference:
        return None
    if "$" in reference:
        return f"{reference}: a variable, not a pinned version"
    name, _, tag = reference.rpartition(":")
    if not name or "/" in tag:  # no tag at all (the colon, if any, belonged to a registry port)
        return f"{reference}: no tag (means latest)"
    repository = name.rsplit("/", 1)[-1]
    version = re.match(r"v?(\d+(?:\.\d+)*)", tag)
    if version is None:
        return f"{reference}: tag {tag!r} is not a version"
    needed = 2 if repository in TWO_PART_VERSIONS else 3
    if len(version.group(1).split(".")) < needed:
        return f"{reference}: tag {tag!r} names a line of releases, not one release"
    return None


def unpinned_images(document: Mapping[str, Any], root: Path) -> list[str]:
    """Every image a service pulls or its Dockerfile builds FROM, unless pinned exactly."""
    problems = []
    for name, service in _services(document):
        if (build := build_of(service, root)) is not None and build[1].is_file():
            for image in Dockerfile.read(build[1]).base_images():
                if problem := image_pin_problem(image):
                    problems.append(f"{_relative(build[1], root)}: FROM {problem}")
        if "image" in service and (problem := image_pin_problem(service["image"])):
            problems.append(f"services.{name}.image: {problem}")
        elif "image" not in service and "build" not in service:
            problems.append(f"services.{name}: neither image nor build")
    return problems


# --- The deployment's shape -----------------------------------------------------------------


def airflow_services(document: Mapping[str, Any], root: Path) -> dict[str, dict[str, Any]]:
    """Services running the Airflow image: pulled as apache/airflow, or built FROM it."""
    found = {}
    for name, service in _services(document):
        build = build_of(service, root)
        if build is not None and build[1].is_file():
            image = Dockerfile.read(build[1]).final_base_image()
        else:
            image = service.get("image", "")
        if image.split(":")[0].removeprefix("docker.io/") == AIRFLOW_BASE_IMAGE:
            found[name] = service
    return found


def command_of(service: Mapping[str, Any]) -> str:
    command = service.get("command") or ""
    return " ".join(map(str, command)) if isinstance(command, list) else str(command)


def environment_of(service: Mapping[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(entry.partition("=")[::2] for entry in environment)
    return {key: "" if value is None else str(value) for key, value in environment.items()}


def depends_on(service: Mapping[str, Any]) -> dict[str, str]:
    """{service: condition} (a list form means `service_started`)."""
    dependencies = service.get("depends_on") or {}
    if isinstance(dependencies, list):
        return dict.fromkeys(dependencies, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in dependencies.items()}


def has_healthcheck(service: Mapping[str, Any]) -> bool:
    check = service.get("healthcheck") or {}
    test = check.get("test")
    return bool(test) and not check.get("disable") and test not in (["NONE"], "NONE")


def services_by_image(document: Mapping[str, Any], repository: str) -> list[str]:
    return [
        name for name, service in _services(document) if _repository(service.get("image", "")) == repository
    ]


def components(document: Mapping[str, Any], root: Path) -> dict[str, list[str]]:
    """{component: [services running it]} for the Airflow components."""
    found: dict[str, list[str]] = {component: [] for component in COMPONENTS}
    for name, service in airflow_services(document, root).items():
        command = command_of(service).removeprefix("airflow ")
        for component in COMPONENTS:
            if command == component or command.startswith(component + " "):
                found[component].append(name)
    return found


def init_job(document: Mapping[str, Any], root: Path) -> str | None:
    """The service the API server waits on to complete: Airflow's init job."""
    for api_server in components(document, root)["api-server"]:
        for name, condition in depends_on(document["services"][api_server]).items():
            if condition == "service_completed_successfully":
                return name
    return None


def deployment_problems(document: Mapping[str, Any], root: Path) -> list[str]:
    """CeleryExecutor with a Redis broker, Postgres for metadata and Celery results; every
    Airflow component, at least two workers under distinct hostnames; an init job that
    migrates the database and that every Airflow service waits on; healthchecks that the
    dependants wait on, and restart policies."""
    services = document.get("services") or {}
    airflow = airflow_services(document, root)
    if not airflow:
        return ["no service runs the Airflow image"]
    postgres = set(services_by_image(document, "postgres"))
    redis = set(services_by_image(document, "redis"))
    init = init_job(document, root)
    problems = []

    for name, service in airflow.items():
        env = environment_of(service)
        where = f"services.{name}.environment"
        if env.get("AIRFLOW__CORE__EXECUTOR") != CELERY_EXECUTOR:
            problems.append(f"{where}: AIRFLOW__CORE__EXECUTOR is not {CELERY_EXECUTOR}")
        for key, schemes, hosts, expected in (
            ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", {"postgresql"}, postgres, "a Postgres service"),
            ("AIRFLOW__CELERY__RESULT_BACKEND", {"db+postgresql"}, postgres, "a Postgres service"),
            ("AIRFLOW__CELERY__BROKER_URL", {"redis", "rediss"}, redis, "a Redis service"),
        ):
            url = urlsplit(env.get(key, ""))
            if url.scheme.partition("+psycopg")[0] not in schemes or url.hostname not in hosts:
                problems.append(f"{where}: {key} does not point at {expected}")
        for dependency in sorted(metadata_db_hosts(service) | broker_hosts(service)):
            if depends_on(service).get(dependency) != "service_healthy":
                problems.append(f"services.{name}: does not wait for {dependency} to be healthy")
        if name != init and str(service.get("user", "")).partition(":")[0] in {"0", "root"}:
            problems.append(f"services.{name}: runs as root; only the init job needs to")
        if ".env" in {path for path, _ in _env_files(service)}:
            problems.append(f"services.{name}.env_file: .env holds `make run`'s local settings")
    # Every component must agree on these, or tasks are refused and secrets unreadable.
    for key in (
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CELERY__BROKER_URL",
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
    ):
        if len({environment_of(service).get(key) for service in airflow.values()}) > 1:
            problems.append(f"{key} differs between Airflow services")

    found = components(document, root)
    problems += [f"no service runs `airflow {component}`" for component, names in found.items() if not names]
    workers = found["celery worker"]
    if len(workers) < MIN_WORKERS:
        problems.append(f"{len(workers)} Celery worker service(s), fewer than {MIN_WORKERS}")
    hostnames = [services[name].get("hostname") for name in workers]
    if None in hostnames or len(set(hostnames)) < len(hostnames):
        problems.append("Celery workers without distinct hostnames (Celery names a worker after its host)")
    for name in workers:
        if services[name].get("hostname") not in (None, name):
            # The API server fetches a running task's log from http://<hostname>:8793.
            problems.append(f"services.{name}: hostname is not the service name, so it does not resolve")

    if init is None:
        problems.append("the API server does not wait for an init job to complete successfully")
    else:
        if init not in airflow or "airflow db migrate" not in command_of(services[init]):
            problems.append(f"services.{init}: the init job does not run `airflow db migrate`")
        if services[init].get("restart") not in (None, "no", "on-failure"):
            problems.append(f"services.{init}: a one-shot job that restarts")
        for name in airflow:
            if name != init and depends_on(services[name]).get(init) != "service_completed_successfully":
                problems.append(f"services.{name}: does not wait for {init} to complete successfully")

    for name, service in _services(document):
        if name == init:
            continue
        if not has_healthcheck(service):
            problems.append(f"services.{name}: no healthcheck, so nothing can wait for it to be ready")
        if service.get("restart") not in ("always", "unless-stopped", "on-failure"):
            problems.append(f"services.{name}: no restart policy")
    return problems


def retry_problems(document: Mapping[str, Any], root: Path, *, retries: int, delay_seconds: int) -> list[str]:
    """Task retries no weaker than production's policy (unset means the pipeline's default)."""
    problems = []
    for name, service in airflow_services(document, root).items():
        env = environment_of(service)
        for key, minimum in (
            ("AIRFLOW__PIPELINES__TASK_RETRIES", retries),
            ("AIRFLOW__PIPELINES__RETRY_DELAY_SECONDS", delay_seconds),
        ):
            value = env.get(key)
            if value is not None and not (value.isdigit() and int(value) >= minimum):
                problems.append(f"services.{name}: {key}={value!r}, below production's {minimum}")
    return problems


def metadata_db_hosts(service: Mapping[str, Any]) -> set[str]:
    """Hosts of the metadata database and Celery result backend a service uses."""
    env = environment_of(service)
    keys = ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND")
    return {host for key in keys if (host := urlsplit(env.get(key, "")).hostname)}


def broker_hosts(service: Mapping[str, Any]) -> set[str]:
    """Host of the Celery broker a service uses."""
    host = urlsplit(environment_of(service).get("AIRFLOW__CELERY__BROKER_URL", "")).hostname
    return {host} if host else set()


def auth_problems(document: Mapping[str, Any], root: Path) -> list[str]:
    """The UI and API ask for a login: SimpleAuthManager with named users and without
    all-admins mode, its passwords file on a volume the init job writes and the API server reads."""
    problems = []
    services = document.get("services") or {}
    init = init_job(document, root)
    api_servers = components(document, root)["api-server"]
    if not api_servers:
        return ["no API server"]
    for name in api_servers:
        env = environment_of(services[name])
        where = f"services.{name}.environment"
        manager = env.get("AIRFLOW__CORE__AUTH_MANAGER", SIMPLE_AUTH_MANAGER)
        if manager != SIMPLE_AUTH_MANAGER:
            problems.append(f"{where}: auth manager {manager} is not installed in this project")
            continue
        if env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False").strip().lower() not in FALSE:
            problems.append(f"{where}: SIMPLE_AUTH_MANAGER_ALL_ADMINS turns login off")
        users = [user for user in env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "").split(",") if user]
        if not users or not all(re.fullmatch(r"[^:]+:(viewer|user|op|admin)", user) for user in users):
            problems.append(f"{where}: SIMPLE_AUTH_MANAGER_USERS must list user:role pairs")
        passwords = env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
        if not passwords:
            problems.append(f"{where}: no SIMPLE_AUTH_MANAGER_PASSWORDS_FILE: passwords would be generated")
            continue
        api_volume = _named_volume_holding(services[name], passwords)
        init_volume = _named_volume_holding(services[init], passwords) if init else None
        if api_volume is None or api_volume != init_volume:
            problems.append(
                f"services.{name}: the passwords file {passwords} is not on a named volume "
                "shared with the init job that writes it"
            )
    return problems


def _named_volume_holding(service: Mapping[str, Any], path: str) -> str | None:
    for volume in service.get("volumes") or []:
        kind, source = _mount_source(volume)
        target = volume.get("target") if isinstance(volume, Mapping) else volume.split(":")[1]
        if kind == "volume" and source and PurePosixPath(path).is_relative_to(target):
            return source
    return None


def _env_files(service: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """(path, required) of each env file a service loads."""
    entries = service.get("env_file") or []
    return [
        (entry, True) if isinstance(entry, str) else (entry["path"], entry.get("required", True))
        for entry in ([entries] if isinstance(entries, str) else entries)
    ]


# --- Secrets --------------------------------------------------------------------------------


class _Markers(Mapping[str, str]):
    """An environment that defines every variable as a recognisable marker of its own name."""

    def __getitem__(self, name: str) -> str:
        return f"<<{name}>>"

    def __contains__(self, name: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def secret_problems(raw_document: Mapping[str, Any]) -> tuple[list[str], set[str]]:
    """Secrets written into the file rather than interpolated from .env.

    Looks where secrets go: settings named like one (``*PASSWORD*``, ``*SECRET*``, ``*_KEY``,
    ...), passwords in URLs, ``password`` fields of JSON connections, ``--requirepass``-style
    arguments. Each must be exactly one variable, and that variable must be required
    (``${VAR:?msg}``) everywhere it is used: a default would be a hard-coded secret.
    Returns the problems and the variables that carry secrets.
    """
    marked = interpolate(raw_document, _Markers()).document
    problems: list[str] = []
    secrets: set[str] = set()

    def must_be_variable(where: str, value: str) -> None:
        match = re.fullmatch(r"<<(\w+)>>", value)
        if match is None:
            problems.append(f"{where}: a secret written into the file, not taken from .env")
        else:
            secrets.add(match.group(1))

    for name, service in _services(marked):
        for key, value in environment_of(service).items():
            where = f"services.{name}.environment.{key}"
            if SECRET_NAME.search(key) and not NOT_A_SECRET.search(key):
                must_be_variable(where, value)
                continue
            for password in URL_PASSWORD.finditer(value):
                must_be_variable(f"{where} (URL password)", password["password"])
            if value.lstrip().startswith("{"):
                try:
                    fields = json.loads(value)
                except ValueError:
                    continue
                if isinstance(fields, dict) and fields.get("password"):
                    must_be_variable(f"{where} (password field)", str(fields["password"]))
        for key in ("command", "entrypoint"):
            words = service.get(key) or []
            words = shlex.split(words) if isinstance(words, str) else [str(word) for word in words]
            for i, word in enumerate(words):
                if flag := SECRET_FLAG.match(word):
                    value = flag["value"] if flag["value"] is not None else (words[i + 1 : i + 2] or [""])[0]
                    must_be_variable(f"services.{name}.{key}: {flag.group(1)}", value)
    for variable, operator in references(raw_document):
        if variable in secrets and operator not in ("?", ":?"):
            problems.append(f"${{{variable}}} is used without `:?`: a secret must never have a default")
    return sorted(set(problems)), secrets


# --- Connections and the pipeline's settings ------------------------------------------------


def connections(service: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{conn_id: fields} of the ``AIRFLOW_CONN_*`` variables of a service (JSON or URI form)."""
    found = {}
    for key, value in environment_of(service).items():
        if not key.startswith("AIRFLOW_CONN_"):
            continue
        conn_id = key.removeprefix("AIRFLOW_CONN_").lower()
        if value.lstrip().startswith("{"):
            try:
                found[conn_id] = json.loads(value)
            except ValueError:
                found[conn_id] = {}
        else:
            url = urlsplit(value)
            found[conn_id] = {"conn_type": url.scheme, "host": url.hostname, "port": url.port}
    return found


def connection_host(fields: Mapping[str, Any]) -> str | None:
    """The host a connection reaches (an HTTP connection may keep the whole base URL in host; an
    AWS connection names its endpoint in the extra ``endpoint_url``, or none for AWS itself)."""
    host = str(fields.get("host") or "") or str(connection_extra(fields).get("endpoint_url") or "")
    return urlsplit(host).hostname if "://" in host else host or None


def connection_extra(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A connection's extra, given as a JSON object or as a string holding one."""
    extra = fields.get("extra") or {}
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except ValueError:
            return {}
    return extra if isinstance(extra, dict) else {}


def connection_problems(document: Mapping[str, Any], root: Path) -> list[str]:
    """Every Airflow connection reaches a service of this deployment by its compose name, and
    none but the maintenance DAG's reaches the metadata database (the warehouse is a database
    of its own); the workers, which run the maintenance DAG's tasks, have that one."""
    problems = []
    services = document.get("services") or {}
    names = set(services) | {service["hostname"] for service in services.values() if service.get("hostname")}
    for name, service in airflow_services(document, root).items():
        metadata_hosts = metadata_db_hosts(service)
        for conn_id, fields in connections(service).items():
            where = f"services.{name}: connection {conn_id}"
            host = connection_host(fields)
            if not fields.get("conn_type"):
                problems.append(f"{where}: not a connection (no conn_type, or not JSON)")
            elif host not in names:
                problems.append(f"{where}: host {host!r} is not a service of this deployment")
            elif (host in metadata_hosts) != (conn_id == METADATA_DB_CONN_ID):
                problems.append(
                    f"{where}: host {host!r} "
                    + ("is not" if conn_id == METADATA_DB_CONN_ID else "is")
                    + " Airflow's metadata database"
                )
        if command_of(service).startswith("celery worker") and METADATA_DB_CONN_ID not in connections(
            service
        ):
            problems.append(f"services.{name}: AIRFLOW_CONN_{METADATA_DB_CONN_ID.upper()} is not set")
    return problems


def postgres_settings(service: Mapping[str, Any]) -> dict[str, str]:
    """The ``-c name=value`` settings a ``postgres`` container's command line gives the server."""
    words = service.get("command") or []
    words = [str(word) for word in words] if isinstance(words, list) else shlex.split(str(words))
    settings = {}
    for flag, value in pairwise(words):
        if flag == "-c" and "=" in value:
            name, _, setting = value.partition("=")
            settings[name.strip()] = setting.strip()
    return settings


def size_bytes(value: str) -> int:
    """A PostgreSQL size setting (``4GB``, ``512MB``; a bare number counts MB, as max_wal_size does)."""
    match = re.fullmatch(r"(\d+)\s*(kB|MB|GB|TB)?", value.strip())
    if not match:
        raise ValueError(f"not a PostgreSQL size: {value!r}")
    return int(match.group(1)) * 1024 ** {"kB": 1, "MB": 2, "GB": 3, "TB": 4}[match.group(2) or "MB"]


def warehouse_problems(document: Mapping[str, Any], conn_id: str, *, day_wal_bytes: int) -> list[str]:
    """The warehouse (the service ``conn_id`` reaches) holds a whole day's WAL between checkpoints."""
    services = document.get("services") or {}
    hosts = {
        connection_host(connections(service).get(conn_id, {}))
        for service in services.values()
        if conn_id in connections(service)
    }
    problems = []
    for host in sorted(filter(None, hosts)):
        settings = postgres_settings(services.get(host, {}))
        max_wal = settings.get("max_wal_size")
        if max_wal is None or size_bytes(max_wal) < day_wal_bytes:
            problems.append(
                f"services.{host}: max_wal_size={max_wal or '1GB (default)'} is below a day's WAL "
                f"({day_wal_bytes / 1024**3:.1f} GB): checkpoints would be forced mid-task"
            )
    return problems


def pipeline_environment_problems(
    document: Mapping[str, Any], root: Path, conn_ids: Iterable[str], variables: Iterable[str]
) -> list[str]:
    """The connections and Variables the DAGs need are set for every Airflow service."""
    problems = []
    for name, service in airflow_services(document, root).items():
        env = environment_of(service)
        defined = connections(service)
        for conn_id in conn_ids:
            if conn_id not in defined:
                problems.append(f"services.{name}: AIRFLOW_CONN_{conn_id.upper()} is not set")
        for variable in variables:
            if not env.get(f"AIRFLOW_VAR_{variable.upper()}"):
                problems.append(f"services.{name}: AIRFLOW_VAR_{variable.upper()} is not set")
    return problems


def drop_folder_problems(document: Mapping[str, Any], root: Path, variable: str) -> list[str]:
    """Every Celery worker mounts a host folder, read-only, at the local ``source`` that the
    Variable ``variable`` (JSON) names: the folder its tasks read a drop from."""
    problems = []
    key = f"AIRFLOW_VAR_{variable.upper()}"
    for name, service in airflow_services(document, root).items():
        if not command_of(service).startswith("celery worker"):
            continue
        where = f"services.{name}"
        try:
            source = json.loads(environment_of(service).get(key) or "")["source"]
        except (ValueError, KeyError, TypeError):
            problems.append(f"{where}: {key} is not a JSON object with a source")
            continue
        if not str(source).startswith("/"):
            problems.append(f"{where}: {key}'s source {source!r} is not a folder of the container")
            continue
        mounts = [_mount(volume) for volume in service.get("volumes") or []]
        found = [mount for mount in mounts if mount[1] == source.rstrip("/")]
        if not found:
            problems.append(f"{where}: nothing is mounted at {source}, the source of {key}")
            continue
        kind, _, read_only = found[-1]
        if kind != "bind":
            problems.append(f"{where}: {source} is a {kind}, not a host folder the operator fills")
        if not read_only:
            problems.append(f"{where}: {source} is mounted read-write; the import must not change a drop")
    return problems


def usage_folder_problems(document: Mapping[str, Any], root: Path, variable: str) -> list[str]:
    """Every Celery worker mounts the ``incoming`` and ``archive`` folders that the Variable
    ``variable`` (JSON) names from the host, read-write and in one mount (archiving is a rename,
    which fails between two mounts); every triggerer, where the DAG's sensor waits, sees
    ``incoming`` through a host folder too."""
    problems = []
    key = f"AIRFLOW_VAR_{variable.upper()}"
    for name, service in airflow_services(document, root).items():
        command = command_of(service)
        if not command.startswith(("celery worker", "triggerer")):
            continue
        where = f"services.{name}"
        try:
            settings = json.loads(environment_of(service).get(key) or "")
            folders = {folder: str(settings[folder]) for folder in ("incoming", "archive")}
        except (ValueError, KeyError, TypeError):
            problems.append(f"{where}: {key} is not a JSON object with an incoming and an archive")
            continue
        if not all(path.startswith("/") for path in folders.values()):
            problems.append(f"{where}: {key}'s folders {folders} are not absolute paths of the container")
            continue
        mounts = [_mount(volume) for volume in service.get("volumes") or []]
        holding = {folder: _mount_holding(mounts, path) for folder, path in folders.items()}
        needed = ("incoming",) if command.startswith("triggerer") else ("incoming", "archive")
        for folder in needed:
            mount = holding[folder]
            if mount is None:
                problems.append(f"{where}: nothing is mounted at {folders[folder]}, the {folder} of {key}")
            elif mount[0] != "bind":
                problems.append(f"{where}: {folders[folder]} is on a {mount[0]}, not a host folder")
            elif mount[2] and command.startswith("celery worker"):
                problems.append(
                    f"{where}: {folders[folder]} is mounted read-only; processed files move out of it"
                )
        if (
            command.startswith("celery worker")
            and None not in holding.values()
            and len(set(holding.values())) > 1
        ):
            problems.append(
                f"{where}: incoming and archive are two mounts; archiving renames, which fails between mounts"
            )
    return problems


def column_sums_problems(
    document: Mapping[str, Any], root: Path, variable: str, *, default_conn_id: str, default_aws_conn_id: str
) -> list[str]:
    """What the on-request sums pipeline needs from the deployment, Variable ``variable`` (JSON):

    every API server has the results' connection (``connection``, else ``default_conn_id``), as
    it reads results; every Celery worker has it too, mounts a host folder read-only at
    ``local_root``, has the S3 connection (``aws_conn_id``, else ``default_aws_conn_id``) and,
    when that connection reaches a service of this deployment, waits for it to be healthy."""
    problems = []
    key = f"AIRFLOW_VAR_{variable.upper()}"
    for name, service in airflow_services(document, root).items():
        command = command_of(service)
        if not command.startswith(("api-server", "celery worker")):
            continue
        where = f"services.{name}"
        try:
            settings = json.loads(environment_of(service).get(key) or "")
            if not isinstance(settings, dict):
                raise TypeError
        except (ValueError, TypeError):
            problems.append(f"{where}: {key} is not a JSON object")
            continue
        defined = connections(service)
        results = settings.get("connection") or default_conn_id
        if results not in defined:
            problems.append(f"{where}: the results' connection {results} (in {key}) is not defined")
        if not command.startswith("celery worker"):
            continue
        local_root = str(settings.get("local_root") or "")
        mount = _mount_holding([_mount(volume) for volume in service.get("volumes") or []], local_root)
        if not local_root.startswith("/"):
            problems.append(f"{where}: {key}'s local_root {local_root!r} is not a folder of the container")
        elif mount is None:
            problems.append(f"{where}: nothing is mounted at {local_root}, the local_root of {key}")
        elif mount[0] != "bind":
            problems.append(f"{where}: {local_root} is on a {mount[0]}, not a host folder the operator fills")
        elif not mount[2]:
            problems.append(f"{where}: {local_root} is mounted read-write; a request only reads")
        aws_conn_id = settings.get("aws_conn_id", default_aws_conn_id)
        if aws_conn_id:
            fields = defined.get(aws_conn_id)
            host = connection_host(fields) if fields is not None else None
            if fields is None:
                problems.append(f"{where}: the S3 connection {aws_conn_id} (in {key}) is not defined")
            elif (
                host in (document.get("services") or {})
                and depends_on(service).get(host) != "service_healthy"
            ):
                problems.append(f"{where}: does not wait for {host}, the S3 of {aws_conn_id}, to be healthy")
    return problems


def receiver_problems(
    document: Mapping[str, Any], root: Path, conn_id: str, *, module: str, token_variable: str
) -> list[str]:
    """The HTTP connection ``conn_id`` of every Airflow service reaches a service running
    ``python -m <module>`` on the connection's port, with the token that service requires (from
    its ``token_variable``); the service keeps its ``--store`` on a named volume, as the keys it
    accepted must outlive its container (they make a resent profile a duplicate, not a second
    delivery); every Celery worker waits for it to be healthy."""
    problems = []
    services = document.get("services") or {}
    for name, service in airflow_services(document, root).items():
        where = f"services.{name}: connection {conn_id}"
        fields = connections(service).get(conn_id)
        if fields is None:
            problems.append(f"services.{name}: AIRFLOW_CONN_{conn_id.upper()} is not set")
            continue
        host = connection_host(fields)
        receiver = services.get(host) or {}
        words = shlex.split(command_of(receiver))
        if f"-m {module}" not in " ".join(words):
            problems.append(f"{where}: host {host!r} does not run {module}")
            continue
        options = dict(pairwise(words))
        port = options.get("--port")
        if str(fields.get("port")) != port:
            problems.append(f"{where}: port {fields.get('port')} is not the port {host} listens on ({port})")
        if (fields.get("schema") or "http") != "http":
            problems.append(f"{where}: schema {fields.get('schema')!r}; {host} speaks plain http")
        token = environment_of(receiver).get(token_variable)
        if not token or fields.get("password") != token:
            problems.append(f"{where}: its password is not the token {host} requires ({token_variable})")
        if (
            command_of(service).startswith("celery worker")
            and depends_on(service).get(host) != "service_healthy"
        ):
            problems.append(f"services.{name}: does not wait for {host} to be healthy")
    for host in sorted({connection_host(fields) for fields in _connections_of(document, root, conn_id)}):
        receiver = services.get(host) or {}
        words = shlex.split(command_of(receiver))
        store = dict(pairwise(words)).get("--store")
        if not store:
            problems.append(f"services.{host}: no --store, so it keeps what it accepted nowhere")
            continue
        mount = _mount_holding([_mount(volume) for volume in receiver.get("volumes") or []], store)
        if mount is None or mount[0] != "volume":
            problems.append(
                f"services.{host}: its store {store} is not on a named volume, so a new container forgets "
                "the keys it accepted"
            )
        elif mount[2]:
            problems.append(f"services.{host}: its store {store} is mounted read-only")
    return problems


def _connections_of(document: Mapping[str, Any], root: Path, conn_id: str) -> list[dict[str, Any]]:
    found = (connections(service).get(conn_id) for service in airflow_services(document, root).values())
    return [fields for fields in found if fields is not None and connection_host(fields) is not None]


def _mount_holding(mounts: list[tuple[str, str, bool]], path: str) -> tuple[str, str, bool] | None:
    """The mount whose container path holds ``path`` (the deepest, as the kernel resolves it)."""
    holding = [
        mount for mount in mounts if mount[1] and (path == mount[1] or path.startswith(mount[1] + "/"))
    ]
    return max(holding, key=lambda mount: len(mount[1]), default=None)


def _mount(volume: str | Mapping[str, Any]) -> tuple[str, str, bool]:
    """(kind, container path, read-only) of a service's volume entry."""
    kind, _ = _mount_source(volume)
    if isinstance(volume, Mapping):
        return kind, str(volume.get("target") or "").rstrip("/"), bool(volume.get("read_only"))
    parts = volume.split(":")
    target = parts[1] if len(parts) > 1 else parts[0]
    options = parts[2].split(",") if len(parts) > 2 else []
    return kind, target.rstrip("/"), "ro" in options


def _services(document: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield from (document.get("services") or {}).items()


def _repository(image: str) -> str:
    """``postgres`` for ``docker.io/library/postgres:16.15@sha256:...``."""
    name = image.split("@")[0]
    head, _, tail = name.rpartition(":")
    if head and "/" not in tail:
        name = head
    return name.rsplit("/", 1)[-1]
