"""The task bodies in order, on a generated drop, as the least-privileged role: the manifest's account.

The DAG's own runs (`airflow dags test`, the real executor) are in tests/test_csv_folder_import.py
and tests/deploy; here the same bodies run in this process, in seconds, split into small chunks.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest
from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk.execution_time.context import OutletEventAccessors

from devservices.energy_certificates import generate
from devservices.environment import postgres_connection_json
from include.csv_import import tasks
from include.csv_import.assets import IMPORTS
from include.csv_import.spec import ImportSpec

TABLE = "landing.certificates"


@pytest.fixture
def drop(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path / "drop"
    manifest = generate(folder, size=3 * 1024 * 1024, files=3, defects=0.002, zipped=0.34, seed=7)
    return folder, manifest


@pytest.fixture
def destination(monkeypatch: pytest.MonkeyPatch, importer_conninfo: str) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_DB", postgres_connection_json(importer_conninfo))
    monkeypatch.setenv("AIRFLOW_VAR_ALERT_RECIPIENTS", "oncall@example.org")
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": 25, "extra": {"from_email": "a@b.c"}}),
    )
    return importer_conninfo


def import_drop(folder: Path, run_id: str, **params: Any) -> dict[str, Any]:
    """Every task body once, in the DAG's order, each chunk as its own mapped task would."""
    spec = ImportSpec.from_params(
        {"source": str(folder), "table": TABLE, "chunk_mb": 1, **params}, run_id=run_id
    )
    tasks.migrate(spec)
    tasks.discover(spec)
    tasks.infer(spec)
    tasks.prepare(spec)
    chunks = tasks.plan(spec)
    for chunk in chunks:
        tasks.import_chunk(spec, chunk["file_id"], chunk["number"])
    events = OutletEventAccessors()
    published = tasks.publish(spec, events)
    return {"chunks": chunks, "published": published, "events": events[IMPORTS].asset_alias_events}


def expected_rejects(manifest: dict[str, Any]) -> Counter:
    rejects: Counter = Counter()
    for entry in manifest["files"]:
        name = entry["member"] or entry["path"]
        for reject in entry["rejects"]:
            rejects[(name.rsplit("/", 1)[-1], reject["line"], reject["reason"])] += 1
        if entry["file_reject"]:
            rejects[(name.rsplit("/", 1)[-1], None, entry["file_reject"]["reason"])] += 1
    return rejects


def stored_rejects(conn: psycopg.Connection) -> Counter:
    rows = conn.execute(
        "SELECT coalesce(f.member, f.url), j.line, j.reason FROM csv_import.rejects j"
        " JOIN csv_import.files f ON f.id = j.file_id WHERE j.run_id = f.imported_by_run"
    ).fetchall()
    return Counter((name.rsplit("/", 1)[-1], line, reason) for name, line, reason in rows)


def test_a_drop_split_into_chunks_ends_in_exactly_the_manifests_rows_and_rejects(
    airflow_home, drop, destination
) -> None:
    folder, manifest = drop

    result = import_drop(folder, "manual__1")

    assert any(chunk["label"].endswith("[2/2]") for chunk in result["chunks"]), "precondition: files split"
    with psycopg.connect(destination) as conn:
        sizes = dict(
            ((file_id, number), size)
            for file_id, number, size in conn.execute(
                "SELECT c.file_id, c.number, coalesce(c.end_byte, f.size) - c.start_byte"
                " FROM csv_import.chunks c JOIN csv_import.files f ON f.id = c.file_id"
            ).fetchall()
        )
        ordered = [sizes[chunk["file_id"], chunk["number"]] for chunk in result["chunks"]]
        assert ordered == sorted(ordered, reverse=True), "the biggest chunks are imported first"
        (rows,) = conn.execute("SELECT count(*) FROM landing.certificates").fetchone()
        assert rows == manifest["totals"]["good_rows"]
        assert stored_rejects(conn) == expected_rejects(manifest)
        # Lineage: a row's file and line hold that row's certificate key.
        key, url, line = conn.execute(
            "SELECT c.lmk_key, f.url, c._source_line FROM landing.certificates c"
            " JOIN csv_import.files f ON f.id = c._source_file_id"
            " WHERE f.member IS NULL ORDER BY c._source_line DESC LIMIT 1"
        ).fetchone()
    physical_lines = Path(url.removeprefix("file://")).read_bytes().split(b"\n")
    assert key.encode() in physical_lines[line - 1]
    [event] = result["events"]
    assert event.extra["rows"] == rows
    assert event.extra["rejects"] == sum(expected_rejects(manifest).values())


def test_a_second_append_imports_nothing_and_a_retried_chunk_stages_nothing_twice(
    airflow_home, drop, destination
) -> None:
    folder, manifest = drop
    first = import_drop(folder, "manual__1")
    spec = ImportSpec.from_params({"source": str(folder), "table": TABLE, "chunk_mb": 1}, run_id="manual__1")
    chunk = first["chunks"][0]

    retried = tasks.import_chunk(spec, chunk["file_id"], chunk["number"])
    second = import_drop(folder, "manual__2")

    assert retried["skipped"] is True
    assert second["chunks"] == []
    assert second["published"]["rows"] == 0
    assert second["events"] == [], "a run that changed nothing must not start downstream DAGs"
    with psycopg.connect(destination) as conn:
        assert (
            conn.execute("SELECT count(*) FROM landing.certificates").fetchone()[0]
            == (manifest["totals"]["good_rows"])
        )


def test_too_many_rejects_fail_publish_at_once_naming_the_files_and_leave_the_table_alone(
    airflow_home, drop, destination
) -> None:
    folder, _ = drop

    with pytest.raises(AirflowFailException, match=r"rejected.*certificates-000") as failure:
        import_drop(folder, "manual__1", max_rejected_share=0.0001)

    assert "max_rejected_share" in str(failure.value)
    with psycopg.connect(destination) as conn:
        assert conn.execute("SELECT to_regclass('landing.certificates') IS NULL").fetchone()[0] or (
            conn.execute("SELECT count(*) FROM landing.certificates").fetchone()[0] == 0
        )
