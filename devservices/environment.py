"""The environment local commands run in: settings from .env files, and Airflow's variables.

Settings come from the real environment first, then ``.env`` (local, never committed), then
``.env.example`` (committed: documents every key and holds the embedded defaults).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import load_dotenv
from psycopg.conninfo import conninfo_to_dict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def load_settings(root: Path = PROJECT_ROOT) -> None:
    """Fill ``os.environ`` from ``.env`` then ``.env.example``, never overriding what is set."""
    load_dotenv(root / ".env", override=False)
    load_dotenv(root / ".env.example", override=False)
    # Airflow refuses relative paths; the files give them relative to the project.
    home = Path(os.environ["AIRFLOW_HOME"])
    if not home.is_absolute():
        os.environ["AIRFLOW_HOME"] = str(root / home)


# What a shell's .env says about Airflow and the local services. A test or benchmark that starts
# an Airflow of its own gives it its own settings and must not inherit these.
LOCAL_SETTINGS = ("AIRFLOW", "START_LOCAL", "SIMULATOR_")


def environment_without(prefixes: tuple[str, ...] = LOCAL_SETTINGS) -> dict[str, str]:
    """This process's environment without the variables whose names start with ``prefixes``."""
    return {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}


def flag(name: str) -> bool:
    return os.environ.get(name, "0").strip().lower() in {"1", "true", "yes", "on"}


def airflow_environment(airflow_home: Path, *, base: dict[str, str] | None = None) -> dict[str, str]:
    """Variables for an Airflow CLI process that serves this project's DAGs."""
    env = dict(os.environ if base is None else base)
    pythonpath = [str(PROJECT_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # `include/` is imported by DAG files: the project root must be importable.
            "PYTHONPATH": os.pathsep.join(dict.fromkeys(pythonpath)),
        }
    )
    return env


@dataclass(frozen=True)
class ConnectionSettings:
    """The fields of an Airflow connection that local tooling needs (same names as Airflow's)."""

    host: str | None = None
    port: int | None = None
    schema: str | None = None
    login: str | None = None
    password: str | None = None
    extra_dejson: dict[str, Any] = field(default_factory=dict)


def connection_from_env(conn_id: str) -> ConnectionSettings:
    """The connection ``conn_id`` as its ``AIRFLOW_CONN_*`` variable defines it (JSON form).

    Read without importing Airflow: Airflow takes over logging and stdout in the importing
    process, and these commands print their own report.
    """
    name = f"AIRFLOW_CONN_{conn_id.upper()}"
    value = os.environ.get(name, "").strip()
    if not value:
        raise KeyError(f"{name} is not set: define it in .env (see .env.example)")
    try:
        fields = json.loads(value)
    except json.JSONDecodeError:
        raise ValueError(f"{name} must be an Airflow connection in JSON form, as in .env.example") from None
    extra = fields.get("extra") or {}
    return ConnectionSettings(
        host=fields.get("host"),
        port=int(fields["port"]) if fields.get("port") else None,
        schema=fields.get("schema"),
        login=fields.get("login"),
        password=fields.get("password"),
        extra_dejson=json.loads(extra) if isinstance(extra, str) else extra,
    )


def postgres_connection_json(conninfo: str) -> str:
    """The Airflow connection, in the JSON form of ``AIRFLOW_CONN_*``, of the database at ``conninfo``."""
    db = conninfo_to_dict(conninfo)
    return json.dumps(
        {
            "conn_type": "postgres",
            "host": db.get("host"),
            "port": int(db.get("port") or 5432),
            "schema": db.get("dbname"),
            "login": db.get("user"),
            "password": db.get("password"),
        }
    )
