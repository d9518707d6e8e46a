"""The environment local commands run in: settings from .env files, and Airflow's variables.

Settings come from the real environment first, then ``.env`` (local, never committed), then
``.env.example`` (committed: documents every key and holds the embedded defaults).
"""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import load_dotenv

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def load_settings(root: Path = PROJECT_ROOT) -> None:
    """Fill ``os.environ`` from ``.env`` then ``.env.example``, never overriding what is set."""
    load_dotenv(root / ".env", override=False)
    load_dotenv(root / ".env.example", override=False)
    # Airflow refuses relative paths; the files give them relative to the project.
    home = Path(os.environ["AIRFLOW_HOME"])
    if not home.is_absolute():
        os.environ["AIRFLOW_HOME"] = str(root / home)


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


def connection_from_env(conn_id: str):
    """The Airflow connection ``conn_id`` as defined by its ``AIRFLOW_CONN_*`` variable."""
    from airflow.sdk import Connection

    name = f"AIRFLOW_CONN_{conn_id.upper()}"
    value = os.environ.get(name)
    if not value:
        raise KeyError(f"{name} is not set: define it in .env (see .env.example)")
    if value.lstrip().startswith("{"):
        return Connection.from_json(value, conn_id=conn_id)
    return Connection.from_uri(value, conn_id=conn_id)
