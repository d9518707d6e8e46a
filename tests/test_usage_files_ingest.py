"""``make run DAG=usage_files_ingest``, end to end, judged by the writer's manifest.

Like ``tests/test_csv_folder_import.py``: ``python -m devservices.local_run --dag usage_files_ingest``
runs in a separate process with its own Airflow home, state folder and ports, starting and stopping
its local PostgreSQL and SMTP sink; the test then reads the store it left on disk. Every expected
sum comes from the writer's manifest, never from a figure the pipeline reported itself.

Two runs serve every test: the first drops the demo files and ingests them; the second drops the
same files again (same names, same content), which must all be duplicates: archived, never applied.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest

from devservices.usage_writer import Manifest
from tests.test_end_to_end import local_run, reopened_warehouse, warehouse_run_environment

pytestmark = pytest.mark.timeout(600)

DB_PASSWORD = "usage-e2e-password"
ALERT_RECIPIENT = "oncall@usage-e2e.test"
DEMO = ("--files", "3", "--size", "2MB", "--consumers", "2000", "--seed", "5")


@dataclass(frozen=True)
class Store:
    """What a run left: the totals, the files' ledger, the duplicates, and the folders."""

    totals: dict[int, int]
    files: dict[str, tuple[str, str | None]]  # name -> (state, disposed_to)
    duplicates: list[tuple[str, str]]  # (name, disposed_to)
    incoming: list[str]
    archive: list[str]


class Step(NamedTuple):
    run: subprocess.CompletedProcess[str]
    after: Store


@pytest.fixture(scope="module")
def run_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    state = tmp_path_factory.mktemp("usage_local_run")
    with warehouse_run_environment(state, db_password=DB_PASSWORD, alert_recipient=ALERT_RECIPIENT) as env:
        yield env


@pytest.fixture(scope="module")
def steps(run_environment: dict[str, str]) -> dict[str, Step]:
    done: dict[str, Step] = {}
    for name in ("first drop", "same drop again"):
        run = local_run(run_environment, "--dag", "usage_files_ingest", *DEMO, timeout_s=300)
        done[name] = Step(run, read_store(run_environment))
    return done


@pytest.fixture(scope="module")
def manifest(run_environment: dict[str, str], steps) -> Manifest:
    [path] = (Path(run_environment["PIPELINES_LOCAL_DIR"]) / "usage_demo").glob("*manifest.json")
    return Manifest.load(path)


def test_the_first_run_adds_exactly_the_manifest_sums(steps, manifest: Manifest) -> None:
    run, after = steps["first drop"]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    assert after.totals == manifest.totals()
    assert "totals = manifest" in run.stdout
    assert f"files      {len(manifest.files)} added, 0 duplicates" in run.stdout
    assert {name: state for name, (state, _) in after.files.items()} == {
        f.name: "done" for f in manifest.files
    }


def test_processed_files_leave_incoming_for_the_archive(steps, manifest: Manifest) -> None:
    after = steps["first drop"].after

    assert after.incoming == []
    assert after.archive == sorted(f.name for f in manifest.files)
    assert all(disposed.endswith(f"/archive/{name}") for name, (_, disposed) in after.files.items())


def test_the_same_files_dropped_again_are_duplicates_archived_and_never_applied(steps, manifest) -> None:
    run, after = steps["same drop again"]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    assert after.totals == steps["first drop"].after.totals == manifest.totals()
    assert f"files      0 added, {len(manifest.files)} duplicates" in run.stdout
    assert sorted(name for name, _ in after.duplicates) == sorted(f.name for f in manifest.files)
    assert after.incoming == []
    # Beside the first copy, with the original's file id before the suffix.
    assert len(after.archive) == 2 * len(manifest.files)
    for name, disposed in after.duplicates:
        assert Path(disposed).parent.name == "archive"
        assert Path(disposed).name != name


def read_store(env: dict[str, str]) -> Store:
    """Reopen the cluster the run left on disk and read the store and the demo folders."""
    demo = Path(env["PIPELINES_LOCAL_DIR"]) / "usage_demo"
    with reopened_warehouse(env, DB_PASSWORD) as conn:
        totals = dict(conn.execute("SELECT consumer_id, amount FROM usage_ingest.consumer_totals").fetchall())
        files = {
            name: (state, disposed)
            for name, state, disposed in conn.execute(
                "SELECT name, state, disposed_to FROM usage_ingest.files"
            )
        }
        duplicates = conn.execute("SELECT name, disposed_to FROM usage_ingest.duplicate_drops").fetchall()
    return Store(
        totals=totals,
        files=files,
        duplicates=duplicates,
        incoming=sorted(p.name for p in (demo / "incoming").iterdir()),
        archive=sorted(p.name for p in (demo / "archive").iterdir()),
    )
