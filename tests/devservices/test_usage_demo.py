"""``make airflow``'s usage demo: the Variable points at the demo folders, and a writer fills them."""

from __future__ import annotations

import json
from pathlib import Path

from devservices.usage_demo import (
    VARIABLE_ENV,
    configure_demo_ingest,
    demo_folders,
    usage_demo_incoming,
    writing_demo_files,
)
from devservices.usage_writer import SUFFIX


def test_the_variable_reads_the_demo_folders_unless_the_user_set_it(tmp_path: Path) -> None:
    environ: dict[str, str] = {}
    settings = configure_demo_ingest(environ, root=tmp_path)

    assert usage_demo_incoming(settings, root=tmp_path) == tmp_path / "incoming"
    assert json.loads(environ[VARIABLE_ENV])["archive"] == str(tmp_path / "archive")

    own = json.dumps({"incoming": "/srv/usage/incoming"})
    assert configure_demo_ingest({VARIABLE_ENV: own}, root=tmp_path) == own
    assert usage_demo_incoming(own, root=tmp_path) is None


def test_the_demo_writer_drops_new_finished_files_with_their_manifests(tmp_path: Path) -> None:
    incoming, _ = demo_folders(tmp_path)
    with writing_demo_files(incoming, every_seconds=0.01, size_bytes=10_000) as written:
        assert written.wait(timeout=60)
        written.clear()
        assert written.wait(timeout=60)

    dropped = sorted(incoming.glob(f"*{SUFFIX}"))
    assert len(dropped) >= 2
    assert not list(incoming.glob(".*"))  # nothing left half-written
    assert len({path.read_bytes() for path in dropped}) == len(dropped)  # new usage, not duplicates
    assert len(list(tmp_path.glob("*manifest.json"))) == len(dropped)
