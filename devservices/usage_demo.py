"""``usage_files_ingest``'s demo folders on this machine, for ``make run`` and ``make airflow`` alike.

``.local/usage_demo/incoming`` is where the demo writer (``devservices.usage_writer``) drops its
files, ``.local/usage_demo/archive`` where the DAG moves them; the writer's manifests (what a
correct ingest ends with) lie beside them. ``make airflow`` points the Variable
``usage_files_ingest`` at these folders, so that the scheduled runs (every five minutes) ingest
whatever is dropped there, and plays the writer service: it drops a small file there every minute
while it runs (:func:`writing_demo_files`). More: ``python -m devservices.usage_writer
.local/usage_demo/incoming --seed <n>``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path

from devservices.local_services import LOCAL_DIR
from devservices.usage_writer import write_files
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


def usage_demo_incoming(settings: str, *, root: Path | None = None) -> Path | None:
    """The demo's incoming folder if the Variable's value ``settings`` reads it, else None (the
    user pointed the DAG at a folder of their own: nothing is written there)."""
    incoming = json.loads(settings).get("incoming")
    demo_incoming, _ = demo_folders(root)
    return demo_incoming if incoming and Path(incoming) == demo_incoming else None


@contextmanager
def writing_demo_files(
    incoming: Path, *, every_seconds: float = 60, size_bytes: int = 2_000_000
) -> Iterator[threading.Event]:
    """Drop one demo usage file into ``incoming`` now and every ``every_seconds`` while the block runs,
    as the writer service of the seed would; yields the event that is set after each file.

    Each file has a seed and a name of its own (from the clock), so every one is new usage, never a
    duplicate of an earlier drop.
    """
    stop, written = threading.Event(), threading.Event()

    def write_until_stopped() -> None:
        while not stop.is_set():
            stamp = time.time_ns() // 1_000_000
            write_files(
                incoming, files=1, size_bytes=size_bytes, consumers=1_000, seed=stamp, prefix=f"demo-{stamp}-"
            )
            written.set()
            stop.wait(every_seconds)

    writer = threading.Thread(target=write_until_stopped, name="usage-demo-writer", daemon=True)
    writer.start()
    try:
        yield written
    finally:
        stop.set()
        writer.join(timeout=60)
