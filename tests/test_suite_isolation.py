"""The test suite leaves a developer's own Airflow state alone.

Airflow creates ``$AIRFLOW_HOME/logs`` (``$HOME/airflow`` when unset) as soon as it is
imported, and test modules import it while pytest collects them. Collecting the whole suite
in a child process whose HOME is an empty folder and which has no AIRFLOW_HOME must leave
that folder without an ``airflow`` directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from devservices.environment import PROJECT_ROOT


def test_collecting_the_suite_creates_nothing_in_the_developers_airflow_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env["HOME"] = str(home)

    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-3000:]
    # Precondition: modules that import Airflow were collected.
    assert "tests/dags/test_dag_integrity.py" in collected.stdout
    assert not (home / "airflow").exists(), sorted(str(p.relative_to(home)) for p in home.rglob("*"))
