"""``make run DAG=csv_folder_import``, end to end, judged by the generator's manifest.

Like ``tests/test_end_to_end.py``: ``python -m devservices.local_run --dag csv_folder_import`` runs
in a separate process with its own Airflow home, state folder and ports, starting and stopping its
local PostgreSQL and SMTP sink, and the test then reads the warehouse it left on disk. The drops are
generated here by ``devservices.energy_certificates``; every expected count, reject and line comes
from its manifest, never from a figure the importer reported itself.

One sequence of runs (each ``airflow dags test`` costs ~25 s) serves every test: a first append, the
same append again, a run failing its rejected-share gate, an append after one file changed, and a
replace by a smaller drop. Each test checks what one of those runs must have left.
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
import pytest
from psycopg import sql

from devservices.energy_certificates import MANIFEST, generate
from devservices.sizes import parse_size
from tests.test_end_to_end import local_run, received, reopened_warehouse, warehouse_run_environment

pytestmark = pytest.mark.timeout(600)

TABLE = "imports.energy_certificates"
DB_PASSWORD = "csv-e2e-password"
ALERT_RECIPIENT = "oncall@csv-e2e.test"
# The file whose content changes between two appends: a plain file (no zip), in both drops.
CHANGED_FILE = "certificates-000.csv"

# (path in the drop, zip member or None): how the manifest, and so these tests, name a file.
FileKey = tuple[str, str | None]


@dataclass(frozen=True)
class Warehouse:
    """What a run left: the table's rows by file and line, and the latest run's ledger."""

    # (file, _source_line, lmk_key) of every row of the table.
    rows: Counter[tuple[FileKey, int, str]]
    checksum: str
    latest_run_published: bool
    # The latest run's files (none when discovery found nothing new) and rejects.
    latest_run_files: int
    latest_run_rejects: Counter[tuple[FileKey, int | None, str]]

    def rows_of(self, file: FileKey) -> Counter[tuple[int, str]]:
        return Counter({(line, key): n for (f, line, key), n in self.rows.items() if f == file})

    def files(self) -> set[FileKey]:
        return {file for file, _, _ in self.rows}


class Step(NamedTuple):
    run: subprocess.CompletedProcess[str]
    after: Warehouse


@pytest.fixture(scope="module")
def drops(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, Any]]]:
    """The drop imported first (4 files, one zip of two members), the same as generated (the runs
    change a file of the first), and a smaller drop (2 plain files)."""
    root = tmp_path_factory.mktemp("csv_drops")
    generated, smaller = root / "as-generated", root / "smaller"
    manifest = generate(generated, size=parse_size("4MB"), files=4, zipped=0.5, seed=11)
    shutil.copytree(generated, root / "first")
    return {
        "first": (root / "first", manifest),
        "as generated": (generated, manifest),
        "smaller": (smaller, generate(smaller, size=parse_size("1MB"), files=2, zipped=0, seed=12)),
    }


@pytest.fixture(scope="module")
def run_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    state = tmp_path_factory.mktemp("csv_local_run")
    with warehouse_run_environment(state, db_password=DB_PASSWORD, alert_recipient=ALERT_RECIPIENT) as env:
        yield env


@pytest.fixture(scope="module")
def steps(run_environment, drops) -> dict[str, Step]:
    """The module's runs, in order, each with the warehouse it left."""
    first, manifest = drops["first"]
    smaller, _ = drops["smaller"]
    done: dict[str, Step] = {}

    def step(name: str, *args: str) -> None:
        run = local_run(run_environment, "--dag", "csv_folder_import", "--table", TABLE, *args, timeout_s=300)
        done[name] = Step(run, read_warehouse(run_environment))

    step("first append", "--source", str(first), "--mode", "append")
    step("same append", "--source", str(first), "--mode", "append")
    # Half the manifest's rejected share: the drop as generated must fail the gate.
    rejects, records = manifest_reject_totals(manifest)
    share = rejects / records
    step(
        "too many rejects",
        "--source",
        str(first),
        "--mode",
        "replace",
        "--max-rejected-share",
        f"{share / 2}",
    )
    shutil.copyfile(smaller / CHANGED_FILE, first / CHANGED_FILE)
    step("append of a changed file", "--source", str(first), "--mode", "append")
    step("replace by a smaller drop", "--source", str(smaller), "--mode", "replace")
    return done


def test_a_first_append_imports_the_manifest_good_rows_and_rejects_its_defects(steps, drops) -> None:
    _, manifest = drops["first"]
    run, after = steps["first append"]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    assert after.latest_run_published
    assert sum(after.rows.values()) == manifest["totals"]["good_rows"]
    for entry in manifest["files"]:
        assert sum(after.rows_of(file_key(entry)).values()) == entry["good_rows"], file_key(entry)
    assert after.latest_run_rejects == expected_rejects(manifest)


def test_each_imported_row_names_the_file_and_physical_line_it_came_from(steps, drops) -> None:
    generated, manifest = drops["as generated"]
    after = steps["first append"].after
    assert after.files() == {file_key(e) for e in manifest["files"] if e["good_rows"]}

    for entry in manifest["files"]:
        rows = sorted(after.rows_of(file_key(entry)))
        if not rows:
            continue
        lines = physical_lines(generated, entry)
        # The first and last rows of the file, and one from the middle (a record may span lines).
        for line, lmk_key in (rows[0], rows[len(rows) // 2], rows[-1]):
            assert lines[line - 1].startswith(lmk_key + entry["delimiter"]), (file_key(entry), line)


def test_the_same_append_again_imports_nothing_twice(steps) -> None:
    run, after = steps["same append"]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    assert after.latest_run_files == 0, "every file of the drop was already imported"
    assert after.latest_run_published
    assert "published  by nothing (every file of the drop was already imported)" in run.stdout
    assert after.rows == steps["first append"].after.rows
    assert after.checksum == steps["first append"].after.checksum


def test_only_the_first_run_migrates_the_metadata_database(steps) -> None:
    """``airflow db migrate`` costs ~10 s even with nothing to do: make run skips it when it may."""
    first, *later = (step.run for step in steps.values())
    assert "already migrated by Airflow" not in first.stderr
    for run in later:
        assert "already migrated by Airflow" in run.stderr, run.stderr[-3000:]


def test_a_run_over_max_rejected_share_publishes_nothing_and_sends_one_alert(
    steps, drops, run_environment
) -> None:
    _, manifest = drops["first"]
    run, after = steps["too many rejects"]
    before = steps["same append"].after

    assert run.returncode != 0, "the run must end failed"
    assert not after.latest_run_published
    assert after.checksum == before.checksum, "the table is exactly as before the run"
    [alert] = [
        message
        for message in received(Path(run_environment["PIPELINES_LOCAL_DIR"]) / "outbox")
        if message["To"] == ALERT_RECIPIENT
    ]
    assert alert["Subject"].startswith("[Airflow alert] csv_folder_import.publish failed")
    body = alert.get_body(("html",)).get_content()
    rejects, records = manifest_reject_totals(manifest)
    assert f"{rejects} of {records} record(s) rejected" in body
    for entry in manifest["files"]:
        if line_rejects := len(entry["rejects"]):
            assert f"{name_in_alert(entry)}: {line_rejects} of {entry['records']} rejected" in body


def test_an_append_after_a_file_changed_replaces_exactly_that_file_rows(steps, drops) -> None:
    first, first_manifest = drops["first"]
    _, smaller_manifest = drops["smaller"]
    run, after = steps["append of a changed file"]
    before = steps["same append"].after
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    changed = (CHANGED_FILE, None)
    [old] = [e for e in first_manifest["files"] if file_key(e) == changed]
    [new] = [e for e in smaller_manifest["files"] if file_key(e) == changed]
    assert sum(after.rows.values()) == sum(before.rows.values()) - old["good_rows"] + new["good_rows"]
    assert sum(after.rows_of(changed).values()) == new["good_rows"]
    assert after.rows_of(changed) != before.rows_of(changed)
    for file in before.files() - {changed}:
        assert after.rows_of(file) == before.rows_of(file), f"{file} was not to be touched"
    assert after.latest_run_rejects == expected_rejects({"files": [new]})
    lines = physical_lines(first, new)
    for line, lmk_key in after.rows_of(changed):
        assert lines[line - 1].startswith(lmk_key + ","), line


def test_a_replace_leaves_exactly_the_smaller_drop(steps, drops) -> None:
    _, manifest = drops["smaller"]
    run, after = steps["replace by a smaller drop"]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    assert sum(after.rows.values()) == manifest["totals"]["good_rows"]
    assert after.files() == {file_key(e) for e in manifest["files"] if e["good_rows"]}
    for entry in manifest["files"]:
        assert sum(after.rows_of(file_key(entry)).values()) == entry["good_rows"], file_key(entry)
    assert after.latest_run_rejects == expected_rejects(manifest)


# --- helpers ----------------------------------------------------------------------------------


def read_warehouse(env: dict[str, str]) -> Warehouse:
    """Reopen the cluster the run left on disk and read the table and the latest run's ledger."""
    with reopened_warehouse(env, DB_PASSWORD) as conn:
        return read_import(conn, TABLE)


def read_import(conn: psycopg.Connection, table: str) -> Warehouse:
    """The rows of ``table`` (schema.table) by file and line, and its latest run's ledger."""
    schema, name = table.split(".")
    target = sql.Identifier(schema, name)
    rows = conn.execute(
        sql.SQL(
            "SELECT f.url, f.member, t._source_line, t.lmk_key, count(*)"
            " FROM {} AS t JOIN csv_import.files AS f ON f.id = t._source_file_id GROUP BY 1, 2, 3, 4"
        ).format(target)
    ).fetchall()
    (checksum,) = conn.execute(
        sql.SQL("SELECT md5(string_agg(t::text, E'\\n' ORDER BY t::text)) FROM {} AS t").format(target)
    ).fetchone()
    run_id, published = conn.execute(
        "SELECT id, published_at IS NOT NULL FROM csv_import.runs"
        " WHERE target_schema = %s AND target_table = %s ORDER BY id DESC LIMIT 1",
        (schema, name),
    ).fetchone()
    (run_files,) = conn.execute(
        "SELECT count(*) FROM csv_import.run_files WHERE run_id = %s", (run_id,)
    ).fetchone()
    rejects = conn.execute(
        "SELECT f.url, f.member, r.line, r.reason FROM csv_import.rejects AS r"
        " JOIN csv_import.files AS f ON f.id = r.file_id WHERE r.run_id = %s",
        (run_id,),
    ).fetchall()
    return Warehouse(
        rows=Counter({((relative(url), member), line, key): n for url, member, line, key, n in rows}),
        checksum=checksum,
        latest_run_published=published,
        latest_run_files=run_files,
        latest_run_rejects=Counter(
            ((relative(url), member), line, reason) for url, member, line, reason in rejects
        ),
    )


def relative(url: str) -> str:
    """A ledger's file URL (file:///.../<drop>/older/x.csv) as the manifest's path (older/x.csv)."""
    path = Path(url.removeprefix("file://"))
    drop = next(parent for parent in path.parents if (parent / MANIFEST).exists())
    return path.relative_to(drop).as_posix()


def file_key(entry: dict[str, Any]) -> FileKey:
    return entry["path"], entry["member"]


def expected_rejects(manifest: dict[str, Any]) -> Counter[tuple[FileKey, int | None, str]]:
    expected: Counter[tuple[FileKey, int | None, str]] = Counter()
    for entry in manifest["files"]:
        for reject in entry["rejects"]:
            expected[file_key(entry), reject["line"], reject["reason"]] += 1
        if entry["file_reject"]:
            expected[file_key(entry), None, entry["file_reject"]["reason"]] += 1
    return expected


def manifest_reject_totals(manifest: dict[str, Any]) -> tuple[int, int]:
    """(rejects, records) of a drop, a file rejected whole counting as one rejected record."""
    rejects = sum(manifest["totals"]["rejects_by_reason"].values())
    return rejects, manifest["totals"]["good_rows"] + rejects


def physical_lines(drop: Path, entry: dict[str, Any]) -> list[str]:
    """The file's (or zip member's) physical lines, as the manifest counts them."""
    if entry["member"] is None:
        data = (drop / entry["path"]).read_bytes()
    else:
        with zipfile.ZipFile(drop / entry["path"]) as archive:
            data = archive.read(entry["member"])
    return data.decode(entry["encoding"], "replace").split("\n")


def name_in_alert(entry: dict[str, Any]) -> str:
    return entry["path"] if entry["member"] is None else f"{entry['path']}!{entry['member']}"
