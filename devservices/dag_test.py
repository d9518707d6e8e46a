"""Run a DAG once on this machine with ``airflow dags test``, as ``make run`` does.

The local runners (:mod:`devservices.local_runs`) share this: Airflow's environment for the
project, its metadata database brought up to date, the run itself with its output kept in a log
file under the local state folder, and the local services stopped afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devservices.environment import PROJECT_ROOT, airflow_environment, load_settings
from devservices.local_services import log_path


@dataclass(frozen=True)
class DagTest:
    """The outcome of one ``airflow dags test``: its exit code and where its output went."""

    returncode: int
    log: Path

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0


class LocalAirflow:
    """The Airflow CLI with the project's DAGs, plugins and local settings (``.env``)."""

    def __init__(self) -> None:
        load_settings()
        self.home = Path(os.environ["AIRFLOW_HOME"])
        self.env = airflow_environment(self.home)

    def migrate(self) -> None:
        self.run(["db", "migrate"], log_name="airflow-db-migrate")

    def dags_test(self, dag_id: str, logical_date: str, conf: dict[str, Any], *, log_name: str) -> DagTest:
        """Run ``dag_id`` once for ``logical_date`` with ``conf``; a failed run is returned, not raised."""
        completed = self.run(
            ["dags", "test", dag_id, logical_date, "--conf", json.dumps(conf)],
            log_name=log_name,
            check=False,
        )
        return DagTest(completed.returncode, log_path(log_name))

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
