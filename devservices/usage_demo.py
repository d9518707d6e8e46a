"""``usage_files_ingest``'s demo folders on this machine, for ``make run`` and ``make airflow`` alike.

``.local/usage_demo/incoming`` is where the demo writer (``devservices.usage_writer``) drops its
files, ``.local/usage_demo/archive`` where the DAG moves them; the writer's manifests (what a
correct ingest ends with) lie beside them. ``make airflow`` points the Variable
``usage_files_ingest`` at these folders, so that the scheduled runs (every five minutes) ingest
whatever is dropped there: ``python -m devservices.usage_writer .local/usage_demo/incoming``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import MutableMapping
from pathlib import Path

from devservices.local_services import LOCAL_DIR
from include.usage_ingest.settings import SETTINGS_VARIABLE

VARIABLE_ENV = f"AIRFLOW_VAR_{SETTINGS_VARIABLE.upper()}"

log = logging.getLogger("devservices")


def demo_folders(root: Path | None = None) -> tuple[Path, Path]:
    """The demo's (incoming, archive) folders, created."""
    root = root or LOCAL_DIR / "usage_demo"
    incoming, archive = root / "incoming", root / "archive"
    incoming.mkdir(parents=True, exist_ok=True)
    archive.mkdir(parents=True, exist_ok=True)
    return incoming, archive


def configure_demo_ingest(environ: MutableMapping[str, str] = os.environ, *, root: Path | None = None) -> str:
    """Point the Variable ``usage_files_ingest`` at the demo folders, unless the user set it already.

    Returns the Variable's value in effect.
    """
    if environ.get(VARIABLE_ENV, "").strip():
        log.info("%s is set: usage_files_ingest reads what it says", VARIABLE_ENV)
        return environ[VARIABLE_ENV]
    incoming, archive = demo_folders(root)
    environ[VARIABLE_ENV] = json.dumps({"incoming": str(incoming), "archive": str(archive)})
    log.info("usage_files_ingest reads the demo folder %s", incoming)
    return environ[VARIABLE_ENV]
