"""`python -m bench` run as a user runs it, on a tiny day, for the bench's tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
