"""The fault table of ``csv_folder_import``: each fault injected into a real component mid-import.

Every test imports a drop made by the demo generator (``devservices.energy_certificates``: four
data files of 1-2 MB, one of them zipped, an empty file and one whose header matches nothing,
defective lines of every kind) with the DAG's task bodies and Airflow's retry semantics
(tests/reliability/csv_import_harness.py) into a real PostgreSQL, in 1 MiB chunks so that a file
has several. It injects one fault, finishes the run as Airflow would (retries, or a rerun), and
compares the table with the generator's manifest: rows lost, rows doubled, rejects. Each adds
its row to the ``csv_folder_import`` section of docs/RELIABILITY.md.

Where a fault must strike in the middle of a chunk's COPY, a row trigger the test adds to the
run's staging table makes the COPY wait, at a line of that chunk, on an advisory lock the test
holds: PostgreSQL then shows the COPY waiting, with the chunk's earlier rows already sent, and
the fault strikes there, whatever the machine's speed. The trigger is dropped before the chunk
is tried again (it is the test's, not the pipeline's). The S3 row reads the drop from the S3
test server (moto) through a proxy that cuts one ranged GET's body half-way
(tests/reliability/s3_proxy.py).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from devservices.energy_certificates import generate
from devservices.postgres import LocalPostgres
from devservices.s3_server import LocalS3, create_bucket, upload_folder
from include.csv_import.warehouse import SCHEMA, staging_name
from tests.conftest import S3_CONN_ID
from tests.reliability.conftest import FaultDatabase, record_harness_row, wait_until_blocked, warehouse_db
from tests.reliability.csv_import_harness import DAG_ID, DropOutcome, ImportRun, task_key
from tests.reliability.s3_proxy import Fault, FaultyS3Proxy

pytestmark = pytest.mark.timeout(300)

TABLE = "imports.energy_certificates"
DROP = {"size": 6_000_000, "files": 4, "defects": 0.001, "zipped": 0.25}
SEED, OTHER_SEED = 3, 4
# The file a fault strikes, in the middle: its second chunk of 1 MiB.
VICTIM = "certificates-000.csv"
# How far into the victim chunk its COPY is held: rows before this line are already sent.
LINES_INTO_CHUNK = 1000
ADVISORY_KEY = 7_000_001
IMPORT_SESSION = f"{DAG_ID}.import_chunk"


@pytest.fixture(scope="module")
def drop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The drop every test imports (tests that change files import a copy of their own)."""
    folder = tmp_path_factory.mktemp("csv_drop") / "drop"
    manifest = generate(folder, seed=SEED, **DROP)
    return folder, manifest


@dataclass
class Warehouse(FaultDatabase):
    """The test's destination database."""

    def outcome(self, source: str | Path, manifest: dict[str, Any]) -> DropOutcome:
        """The table against ``manifest``, of the drop at ``source`` (a folder or a URL)."""
        url = source.as_uri() if isinstance(source, Path) else source
        return DropOutcome.measure(self.conninfo, TABLE, url, manifest)

    def target_rows(self) -> int:
        schema, name = TABLE.split(".")
        with psycopg.connect(self.conninfo) as conn:
            query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name))
            return conn.execute(query).fetchone()[0]

    def ledger_run(self, run_id: str) -> int:
        with psycopg.connect(self.conninfo) as conn:
            return conn.execute("SELECT id FROM csv_import.runs WHERE dag_run_id = %s", (run_id,)).fetchone()[
                0
            ]

    def first_line(self, run_id: str, chunk: dict[str, Any]) -> int:
        with psycopg.connect(self.conninfo) as conn:
            return conn.execute(
                "SELECT c.first_line FROM csv_import.chunks c JOIN csv_import.runs r ON r.id = c.run_id"
                " WHERE r.dag_run_id = %s AND c.file_id = %s AND c.number = %s",
                (run_id, chunk["file_id"], chunk["number"]),
            ).fetchone()[0]


@pytest.fixture
def warehouse(
    airflow_home: Path,
    cluster: LocalPostgres,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Iterator[Warehouse]:
    with warehouse_db(cluster, monkeypatch, request, prefix="csv_") as database:
        yield Warehouse(cluster, database)


def params(source: str | Path, **more: Any) -> dict[str, Any]:
    return {"source": str(source), "table": TABLE, "mode": "append", "chunk_mb": 1, **more}


def victim_chunk(run: ImportRun) -> dict[str, Any]:
    return next(chunk for chunk in run.chunks if chunk["label"] == f"{VICTIM} [2/2]")


class CopyHeld:
    """Hold the COPY of one chunk at a line: a row trigger waits on an advisory lock the test holds.

    ``with CopyHeld(...) as held``: the trigger is armed and the lock taken; ``held.wait()``
    returns once the chunk's COPY waits for it, ``held.release()`` lets it go on; leaving the
    block drops the trigger (waiting, if need be, until the COPY's transaction has ended).
    """

    def __init__(self, conninfo: str, ledger_run: int, file_id: int, line: int) -> None:
        self._conninfo = conninfo
        self._staging = sql.Identifier(SCHEMA, staging_name(ledger_run))
        self._file_id = file_id
        self._line = line
        self._holder: psycopg.Connection | None = None

    def __enter__(self) -> CopyHeld:
        with psycopg.connect(self._conninfo, autocommit=True) as conn:
            conn.execute(
                sql.SQL(
                    "CREATE OR REPLACE FUNCTION public.hold_copy() RETURNS trigger LANGUAGE plpgsql AS"
                    " $$ BEGIN PERFORM pg_advisory_xact_lock({}); RETURN NEW; END $$"
                ).format(sql.Literal(ADVISORY_KEY))
            )
            conn.execute(
                sql.SQL(
                    "CREATE TRIGGER hold_copy BEFORE INSERT ON {} FOR EACH ROW"
                    " WHEN (NEW._source_file_id = {} AND NEW._source_line >= {})"
                    " EXECUTE FUNCTION public.hold_copy()"
                ).format(self._staging, sql.Literal(self._file_id), sql.Literal(self._line))
            )
        self._holder = psycopg.connect(self._conninfo, autocommit=True)
        self._holder.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_KEY,))
        return self

    def wait(self, timeout_s: float = 120) -> str:
        """Wait until the chunk's COPY waits on the lock; return the statement PostgreSQL shows."""
        deadline = time.monotonic() + timeout_s
        with psycopg.connect(self._conninfo, autocommit=True) as conn:
            while time.monotonic() < deadline:
                waiting = conn.execute(
                    "SELECT query FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event = 'advisory' AND application_name = %s",
                    (IMPORT_SESSION,),
                ).fetchone()
                if waiting:
                    return waiting[0]
                time.sleep(0.05)
        raise TimeoutError("the chunk's COPY never reached the held line")

    def release(self) -> None:
        if self._holder is not None:
            # After a restart the lock went with the server: closing may find the connection gone.
            with contextlib.suppress(psycopg.OperationalError):
                self._holder.close()
            self._holder = None

    def __exit__(self, *exc: object) -> None:
        self.release()
        with psycopg.connect(self._conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP TRIGGER hold_copy ON {}").format(self._staging))


def hold_copy(warehouse: Warehouse, run: ImportRun, chunk: dict[str, Any]) -> CopyHeld:
    line = warehouse.first_line(run.run_id, chunk) + LINES_INTO_CHUNK
    return CopyHeld(warehouse.conninfo, warehouse.ledger_run(run.run_id), chunk["file_id"], line)


def record(
    fault_table: list[dict[str, Any]], *, fault: str, injection: str, behaviour: str, outcome: DropOutcome
) -> None:
    record_harness_row(
        fault_table,
        pipeline=DAG_ID,
        fault=fault,
        injection=injection,
        behaviour=behaviour,
        outcome=outcome,
        rejects=outcome.rejects,
    )


def test_a_worker_killed_mid_copy_leaves_nothing_of_the_chunk_and_its_retry_finishes_the_run(
    drop, warehouse: Warehouse, fault_table
) -> None:
    folder, manifest = drop
    run = ImportRun(params(folder))
    assert run.run_until_planned(), run.errors
    chunk = victim_chunk(run)
    shown = []

    def before_try(key: str, try_number: int) -> bool:
        if key != task_key("import_chunk", chunk) or try_number > 1:
            return False
        with hold_copy(warehouse, run, chunk) as held:
            worker = run.worker("import_chunk", chunk)
            shown.append(held.wait())
            worker.send_signal(signal.SIGKILL)
            assert worker.wait(30) == -signal.SIGKILL
        return True

    run.before_try = before_try
    run.import_chunks()
    run.publish()

    assert run.succeeded, run.errors
    assert shown[0].startswith("COPY")
    assert run.tries[task_key("import_chunk", chunk)] == 2
    outcome = warehouse.outcome(folder, manifest)
    record(
        fault_table,
        fault="worker killed mid-file (SIGKILL)",
        injection=f"the process importing {chunk['label']} killed with SIGKILL while PostgreSQL showed "
        f"its COPY, {LINES_INTO_CHUNK} lines into the chunk",
        behaviour="PostgreSQL rolled the chunk's transaction back when the connection dropped (its "
        "rows and ledger row with it); the retry imported the chunk whole; " + run.behaviour(),
        outcome=outcome,
    )
    assert outcome.exact, outcome


def test_postgres_restarted_mid_copy_then_the_chunks_retry_finishes_the_run(
    drop, warehouse: Warehouse, fault_table
) -> None:
    folder, manifest = drop
    run = ImportRun(params(folder))
    assert run.run_until_planned(), run.errors
    chunk = victim_chunk(run)

    def before_try(key: str, try_number: int) -> bool:
        if key != task_key("import_chunk", chunk) or try_number > 1:
            return False
        with hold_copy(warehouse, run, chunk) as held:
            worker = run.worker("import_chunk", chunk)
            held.wait()
            warehouse.cluster.stop(force=True)
            # The try failed on its lost connection, as a retryable error (not a permanent one).
            assert worker.wait(60) == 1
            held.release()
            warehouse.cluster.start()
        return True

    run.before_try = before_try
    run.import_chunks()
    run.publish()

    assert run.succeeded, run.errors
    assert run.tries[task_key("import_chunk", chunk)] == 2
    outcome = warehouse.outcome(folder, manifest)
    record(
        fault_table,
        fault="PostgreSQL restarted mid-import",
        injection=f"`pg_ctl stop -m fast` while {chunk['label']}'s COPY was {LINES_INTO_CHUNK} lines "
        "in, then start",
        behaviour="the chunk's try failed on the lost connection, its transaction rolled back; the "
        "retry imported the chunk whole; " + run.behaviour(),
        outcome=outcome,
    )
    assert outcome.exact, outcome


def test_a_file_changed_while_it_was_read_fails_the_run_and_a_rerun_imports_the_new_version(
    drop, warehouse: Warehouse, fault_table, tmp_path: Path
) -> None:
    original, manifest = drop
    folder = tmp_path / "drop"
    shutil.copytree(original, folder)
    newer = generate(tmp_path / "newer", seed=OTHER_SEED, **DROP)
    new_version = (tmp_path / "newer" / VICTIM).read_bytes()
    run = ImportRun(params(folder))
    assert run.run_until_planned(), run.errors
    chunk = victim_chunk(run)

    first_half = task_key("import_chunk", {"label": f"{VICTIM} [1/2]"})

    def before_try(key: str, try_number: int) -> bool:
        if key == task_key("import_chunk", chunk) and try_number == 1:
            # Half of the file is staged; its second half is read from the new version.
            assert run.states[first_half] == "success"
            (folder / VICTIM).write_bytes(new_version)
        return False

    run.before_try = before_try
    run.import_chunks()
    run.publish()

    key = task_key("import_chunk", chunk)
    assert run.states[key] == "failed"
    assert run.tries[key] == 1
    assert "it changed since discovery" in run.errors[key]
    assert run.states["publish"] == "upstream_failed"
    assert warehouse.target_rows() == 0

    rerun = ImportRun(params(folder), run_id="manual__rerun").run()

    assert rerun.succeeded, rerun.errors
    expected = dict(manifest)
    expected["files"] = [
        next(e for e in newer["files"] if e["path"] == VICTIM) if entry["path"] == VICTIM else entry
        for entry in manifest["files"]
    ]
    outcome = warehouse.outcome(folder, expected)
    record(
        fault_table,
        fault="a file changed while it was read",
        injection=f"{VICTIM} rewritten in place (another version) after its first chunk was "
        "imported, before its second was read",
        behaviour=f'{chunk["label"]} failed at once with SourceChanged ("it changed since '
        'discovery"), publish upstream_failed, the table untouched (the first half stays staged, '
        "unpublished); a rerun (new run) imported the new version; compared with the manifest of "
        "the new version",
        outcome=outcome,
    )
    assert outcome.exact, outcome


def test_a_same_size_edit_between_a_files_chunks_fails_the_chunk(
    drop, warehouse: Warehouse, tmp_path: Path
) -> None:
    original, _ = drop
    folder = tmp_path / "drop"
    shutil.copytree(original, folder)
    run = ImportRun(params(folder))
    assert run.run_until_planned(), run.errors
    chunk = victim_chunk(run)

    def before_try(key: str, try_number: int) -> bool:
        if key == task_key("import_chunk", chunk) and try_number == 1:
            data = bytearray((folder / VICTIM).read_bytes())
            # One digit near the end (in the second chunk) becomes another: same size, new content.
            digit = next(i for i in range(len(data) - 5000, len(data)) if chr(data[i]).isdigit())
            data[digit] = ord("1") if data[digit] == ord("0") else ord("0")
            (folder / VICTIM).write_bytes(bytes(data))
        return False

    run.before_try = before_try
    run.import_chunks()

    assert run.states[task_key("import_chunk", chunk)] == "failed"


def test_two_runs_at_once_on_the_same_drop_import_each_file_once(
    drop, warehouse: Warehouse, fault_table
) -> None:
    folder, manifest = drop
    first = ImportRun(params(folder), run_id="manual__first")
    second = ImportRun(params(folder), run_id="manual__second")
    assert first.run_until_planned(), first.errors
    assert second.run_until_planned(), second.errors
    assert len(first.chunks) == len(second.chunks) > 1
    for chunk_of_first, chunk_of_second in zip(first.chunks, second.chunks, strict=True):
        assert first.run_task("import_chunk", chunk_of_first), first.errors
        assert second.run_task("import_chunk", chunk_of_second), second.errors

    # Both publish at once: the test holds the target until both wait for it, then lets go.
    schema, name = TABLE.split(".")
    with psycopg.connect(warehouse.conninfo) as holder:
        holder.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(schema, name)))
        publishers = [threading.Thread(target=run.publish) for run in (first, second)]
        for waiting, publisher in enumerate(publishers, start=1):
            publisher.start()
            wait_until_blocked(warehouse.conninfo, application_name=f"{DAG_ID}.publish", count=waiting)
        holder.rollback()
    for publisher in publishers:
        publisher.join(120)

    assert first.succeeded, first.errors
    assert second.succeeded, second.errors
    with psycopg.connect(warehouse.conninfo) as conn:
        outcomes = conn.execute(
            "SELECT file_id, outcome FROM csv_import.run_files WHERE outcome IS NOT NULL"
        ).fetchall()
    imported = Counter(file_id for file_id, outcome in outcomes if outcome == "imported")
    skipped = {file_id for file_id, outcome in outcomes if outcome == "skipped"}
    assert set(imported.values()) == {1}, "a file was imported by both runs"
    assert skipped == imported.keys()
    outcome = warehouse.outcome(folder, manifest)
    record(
        fault_table,
        fault="two runs at once on the same drop and table",
        injection="two runs (two run ids), their chunks imported alternately; both publishes "
        "started while the test held the target, then let go together",
        behaviour=f"each of the {len(imported)} files imported by one run and skipped by the other "
        "(the second publish waited for the first's lock, then found them imported); both runs "
        "succeeded",
        outcome=outcome,
    )
    assert outcome.exact, outcome


def test_an_s3_download_cut_mid_chunk_is_read_again_and_the_import_is_exact(
    drop, warehouse: Warehouse, s3_server: LocalS3, monkeypatch: pytest.MonkeyPatch, fault_table
) -> None:
    folder, manifest = drop
    bucket, prefix = "csv-import-faults", "drop"
    create_bucket(S3_CONN_ID, bucket)
    upload_folder(S3_CONN_ID, folder, bucket, prefix)
    source = f"s3://{bucket}/{prefix}"
    with FaultyS3Proxy(s3_server.endpoint_url) as proxy:
        connection = s3_server.connection()
        connection["extra"] = {**connection["extra"], "endpoint_url": proxy.endpoint_url}
        monkeypatch.setenv("AIRFLOW_CONN_S3_BEHIND_A_FLAKY_NETWORK", json.dumps(connection))
        run = ImportRun(params(source, storage_connection="s3_behind_a_flaky_network"))
        assert run.run_until_planned(), run.errors
        chunk = victim_chunk(run)

        def before_try(key: str, try_number: int) -> bool:
            if key == task_key("import_chunk", chunk) and try_number == 1:
                proxy.inject(bucket, f"{prefix}/{VICTIM}", Fault.CUT)
            return False

        run.before_try = before_try
        run.import_chunks()
        run.publish()

    assert run.succeeded, run.errors
    cuts = [n for n, get in enumerate(proxy.gets) if get.fault is Fault.CUT]
    assert len(cuts) == 1, "the fault never struck"
    chunk_tries = run.tries[task_key("import_chunk", chunk)]
    # The cut range was asked for again: by the client within the try, or by a retry.
    (cut,) = cuts
    assert proxy.gets[cut].range in [get.range for get in proxy.gets[cut + 1 :]]
    outcome = warehouse.outcome(source, manifest)
    record(
        fault_table,
        fault="S3: the connection dropped mid-body",
        injection=f"a proxy between the import and the S3 server (moto) sent half of {chunk['label']}'s "
        "ranged GET, then closed the connection",
        behaviour=(
            "the S3 client (s3fs) saw the short body and asked for the range again within the try"
            if chunk_tries == 1
            else "the chunk's try failed on the short body, its transaction rolled back; the retry "
            "imported the chunk whole"
        )
        + "; "
        + run.behaviour(),
        outcome=outcome,
    )
    assert outcome.exact, outcome


def test_the_measure_sees_a_row_lost_a_row_doubled_and_a_reject_missing(drop, warehouse: Warehouse) -> None:
    """The rows above read 0 / 0 because the import was exact, not because the measure is blind."""
    folder, manifest = drop
    assert ImportRun(params(folder)).run().succeeded
    assert warehouse.outcome(folder, manifest).exact
    schema, name = TABLE.split(".")
    target = sql.Identifier(schema, name)
    with psycopg.connect(warehouse.conninfo) as conn:
        first, second = conn.execute(
            sql.SQL("SELECT _source_file_id, _source_line FROM {} ORDER BY 1, 2 LIMIT 2").format(target)
        ).fetchall()
        lineage = sql.SQL("_source_file_id = %s AND _source_line = %s")
        conn.execute(sql.SQL("DELETE FROM {} WHERE ").format(target) + lineage, first)
        conn.execute(sql.SQL("INSERT INTO {0} SELECT * FROM {0} WHERE ").format(target) + lineage, second)
        conn.execute("DELETE FROM csv_import.rejects WHERE id = (SELECT min(id) FROM csv_import.rejects)")

    outcome = warehouse.outcome(folder, manifest)

    assert (outcome.rows_lost, outcome.rows_doubled, outcome.rejects_missing) == (1, 1, 1)
    assert not outcome.exact
