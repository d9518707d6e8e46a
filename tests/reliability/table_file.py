"""Where the fault tests' rows land, whether the suite ran in one process or in several.

A session's rows are written once, at its end, to :data:`TABLE_FILE`. Under pytest-xdist
(``make test`` runs two processes) each worker hands its rows to the controller instead, which
writes them all: a worker writing the file itself would overwrite the other's rows.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.artifacts import TEST_ARTIFACTS

TABLE_FILE = TEST_ARTIFACTS / "reliability" / "faults.json"
# The key of a worker's rows in what it sends the controller (JSON text: the rows hold dates).
_WORKER_ROWS = "reliability_fault_rows"
_COLLECTED = pytest.StashKey[list[dict[str, Any]]]()


def finish_session(config: pytest.Config, rows: list[dict[str, Any]]) -> None:
    """At a session's end: write the rows, or, in an xdist worker, hand them to the controller."""
    if hasattr(config, "workeroutput"):
        config.workeroutput[_WORKER_ROWS] = json.dumps(rows, default=str)
    elif rows:
        write(rows)


def collect_from_worker(config: pytest.Config, workeroutput: dict[str, Any]) -> None:
    """In the controller: keep a finished worker's rows for :func:`write_collected`."""
    if _WORKER_ROWS in workeroutput:
        config.stash.setdefault(_COLLECTED, []).extend(json.loads(workeroutput[_WORKER_ROWS]))


def write_collected(config: pytest.Config) -> None:
    """In the controller, at the end: write every worker's rows, if any worker had some."""
    if rows := config.stash.get(_COLLECTED, []):
        write(rows)


def write(rows: list[dict[str, Any]]) -> None:
    TABLE_FILE.parent.mkdir(parents=True, exist_ok=True)
    TABLE_FILE.write_text(json.dumps(rows, indent=2, default=str) + "\n")
