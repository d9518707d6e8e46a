"""Where tests leave what a person may want to look at afterwards (screenshots, the fault table)."""

from __future__ import annotations

import os
from pathlib import Path

from devservices.environment import PROJECT_ROOT

TEST_ARTIFACTS = Path(os.environ.get("PIPELINES_TEST_ARTIFACTS", PROJECT_ROOT / ".local" / "test-artifacts"))
