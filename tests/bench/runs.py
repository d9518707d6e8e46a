"""The benchmarks run as a user runs them, on tiny inputs, and what every benchmark's tests check."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devservices.environment import PROJECT_ROOT


def run_bench(state_dir: Path, *flags: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
    """``--quick`` on 2,000 attempts with small samples, plus ``flags``; fails the test on an error."""
    command = [sys.executable, "-m", "bench", "--quick", *flags, "--records", "2000"]
    command += ["--row-sample", "200", "--pandas-sample", "500", "--state-dir", str(state_dir)]
    completed = subprocess.run(
        command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed


def run_quick(module: str, state_dir: Path, *flags: str, timeout_s: float = 240) -> dict[str, Any]:
    """``python -m <module> --quick <flags>``: the JSON of its last line, which is its results.json."""
    command = [sys.executable, "-m", module, "--quick", *flags, "--state-dir", str(state_dir)]
    completed = subprocess.run(
        command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(completed.stdout.strip().splitlines()[-1])
    assert results == json.loads((state_dir / "results.json").read_text())
    return results


def assert_rewrites_only_its_part(
    write_docs: Callable[[dict[str, Any], Path, Path], None],
    results: dict[str, Any],
    title: str,
    folder: Path,
    others: str,
) -> None:
    """``write_docs`` into a document holding ``others``: its part added once, the rest kept, a chart."""
    document = folder / "PERFORMANCE.md"
    document.write_text(others)

    write_docs(results, document, folder / "chart.png")
    once = document.read_text()
    write_docs(results, document, folder / "chart.png")

    assert document.read_text() == once
    assert once.startswith(others)
    assert once.count(title) == 1
    assert (folder / "chart.png").stat().st_size > 0
