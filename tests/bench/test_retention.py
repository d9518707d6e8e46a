"""``python -m bench.retention`` as a user runs it, on a few tiny days, and its section of the docs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import report
from devservices.environment import PROJECT_ROOT
from devservices.postgres import LocalPostgres, free_port

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    state_dir = tmp_path_factory.mktemp("bench_retention")
    command = [sys.executable, "-m", "bench.retention", "--days", "4", "--records", "500"]
    command += ["--retention-days", "2", "--state-dir", str(state_dir)]
    completed = subprocess.run(
        command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=240, check=False
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed, state_dir


def test_retention_keeps_the_warehouse_smaller_and_the_published_rows_whole(bench_run) -> None:
    completed, state_dir = bench_run
    figures = json.loads(completed.stdout.strip().splitlines()[-1])

    assert figures == json.loads((state_dir / "retention.json").read_text())
    without, with_retention = figures["without_retention"], figures["with_retention"]
    # 4 days, 2 kept: two days' landing and staging dropped, everything else the same.
    assert with_retention["landing_and_staging"] == pytest.approx(without["landing_and_staging"] / 2, rel=0.2)
    assert with_retention["rest_of_schema"] == without["rest_of_schema"]
    assert with_retention["database"] < without["database"]
    day = figures["one_day"]
    assert day["rows"] > 500  # the day's landing, staged attempts and rejections
    assert day["bytes_after_delete"] == day["bytes"] > 0, "a DELETE gives no space back by itself"
    assert day["drop_s"] > 0
    assert day["delete_s"] > 0
    assert "drop its partitions (retention)" in completed.stdout


def test_the_cluster_is_gone(bench_run) -> None:
    _, state_dir = bench_run
    assert not LocalPostgres(state_dir=state_dir / "postgres", port=free_port()).data_dir.exists()


FIGURES = {
    "measured": True,
    "days": 30,
    "records_per_day": 100_000,
    "retention_days": 14,
    "without_retention": {"database": 9e9, "landing_and_staging": 6e9, "rest_of_schema": 3e9},
    "with_retention": {"database": 6e9, "landing_and_staging": 3e9, "rest_of_schema": 3e9},
    "daily_purge_max_s": 0.05,
    "one_day": {
        "bytes": 2e8,
        "rows": 200_000,
        "drop_s": 0.05,
        "delete_s": 1.5,
        "bytes_after_delete": 2e8,
        "vacuum_s": 0.9,
        "bytes_after_vacuum": 1e6,
    },
}


def test_write_docs_rewrites_only_the_retention_section(tmp_path: Path) -> None:
    docs = tmp_path / "PERFORMANCE.md"
    docs.write_text("# Performance\n\n## Stages\n\nstage table\n")

    report.write_retention_section({**FIGURES, "days": 29}, docs)
    report.write_retention_section(FIGURES, docs)
    docs.write_text(docs.read_text() + "\n## Airflow\n\nafter\n")
    report.write_retention_section(FIGURES, docs)

    text = docs.read_text()
    assert text.startswith("# Performance\n\n## Stages\n\nstage table\n\n## Landing retention\n")
    assert text.count("## Landing retention") == 1
    assert "30 simulated days of 100,000 attempts" in text
    assert "29 simulated days" not in text
    assert text.endswith("\n## Airflow\n\nafter\n")
