"""``csv_folder_import``'s demo drop on this machine, for ``make run`` and ``make airflow`` alike.

Energy certificates (``devservices.energy_certificates``) generated once into
``.local/csv_drop/<size>-<files>files-seed<seed>``: a few defective lines of every kind, some files
zipped, and the manifest of what a correct import ends with. ``make airflow`` points the Variable
``csv_folder_import`` at it, so that the DAG runs from the UI with an empty form.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import MutableMapping
from pathlib import Path

from devservices.energy_certificates import generate
from devservices.local_services import LOCAL_DIR
from devservices.sizes import parse_size
from include.csv_import.spec import SETTINGS_VARIABLE

DEMO_TABLE = "imports.energy_certificates"
DEFAULT_SIZE = "50MB"
DEFAULT_FILES = 8
DEFAULT_SEED = 1
VARIABLE_ENV = f"AIRFLOW_VAR_{SETTINGS_VARIABLE.upper()}"

log = logging.getLogger("devservices")


def demo_drop(
    size: str = DEFAULT_SIZE,
    files: int = DEFAULT_FILES,
    seed: int = DEFAULT_SEED,
    *,
    root: Path | None = None,
) -> Path:
    """The demo drop of these arguments, generated the first time it is asked for."""
    folder = (root or LOCAL_DIR / "csv_drop") / f"{size.lower()}-{files}files-seed{seed}"
    if not (folder / "manifest.json").exists():
        log.info("generating the demo drop %s (once)", folder)
        # Generated aside and renamed when complete: an interrupted run never leaves half a drop.
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        generate(partial, size=parse_size(size), files=files, defects=0.001, zipped=0.25, seed=seed)
        partial.rename(folder)
    return folder


def configure_demo_import(
    environ: MutableMapping[str, str] = os.environ, *, size: str | None = None, root: Path | None = None
) -> str:
    """Point the Variable ``csv_folder_import`` at the demo drop, unless the user set it already.

    Returns the Variable's value in effect. ``size`` None: ``CSV_DEMO_SIZE``, else 50MB.
    """
    if environ.get(VARIABLE_ENV, "").strip():
        log.info("%s is set: csv_folder_import imports what it says", VARIABLE_ENV)
        return environ[VARIABLE_ENV]
    folder = demo_drop(size or environ.get("CSV_DEMO_SIZE") or DEFAULT_SIZE, root=root)
    environ[VARIABLE_ENV] = json.dumps({"source": str(folder), "table": DEMO_TABLE})
    log.info("csv_folder_import imports the demo drop %s into %s", folder, DEMO_TABLE)
    return environ[VARIABLE_ENV]
