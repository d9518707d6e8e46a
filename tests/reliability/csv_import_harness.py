"""Run ``csv_folder_import`` task by task, as Airflow would, and measure it against the manifest.

``ImportRun`` calls the DAG's task bodies (``include.csv_import.tasks``) in the DAG's order, each
with the ``ImportSpec`` its task would build from Airflow, with Airflow's retry semantics: a task
that raises is tried again, up to ``retries`` more times, except for ``AirflowFailException``
(what a ``PermanentFailure`` becomes), which fails it at once. ``import_chunk`` is mapped: every
planned chunk is a task instance of its own and all of them run whatever the others did;
``publish`` runs only when all of them succeeded. Configuration comes from ``AIRFLOW_CONN_*``
variables, as in a deployment.

A try can run in a process of its own (``ImportRun.worker``: a ``tests.reliability.workers``
process), as a worker runs it, so that a test can SIGKILL it.

``DropOutcome`` compares what the target table and the reject table hold with the generator's
manifest (``devservices.energy_certificates``): every good line once, every reject with its
reason, never with a count the importer made itself.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk.execution_time.context import OutletEventAccessors
from psycopg import sql

from include.csv_import import tasks
from include.csv_import.spec import ImportSpec
from tests.reliability.workers import Worker

DAG_ID = "csv_folder_import"
# A worker's exit code when its try failed with AirflowFailException (no retry).
FAILED_FOR_GOOD = 2
BEFORE_IMPORT = ("migrate_schema", "discover_files", "infer_schema", "prepare_table", "plan_chunks")
BODIES: dict[str, Callable[[ImportSpec], Any]] = {
    "migrate_schema": tasks.migrate,
    "discover_files": tasks.discover,
    "infer_schema": tasks.infer,
    "prepare_table": tasks.prepare,
    "plan_chunks": tasks.plan,
}


def call_body(task_id: str, spec: ImportSpec, chunk: Mapping[str, Any] | None = None) -> Any:
    """Call a task's body with what the DAG's task passes it (``chunk``: a mapped import's argument)."""
    if task_id == "import_chunk":
        assert chunk is not None
        return tasks.import_chunk(spec, chunk["file_id"], chunk["number"])
    if task_id == "publish":
        return tasks.publish(spec, OutletEventAccessors())
    return BODIES[task_id](spec)


def task_key(task_id: str, chunk: Mapping[str, Any] | None = None) -> str:
    """How the UI names a task instance: a mapped import by its chunk's label."""
    return f"{task_id}[{chunk['label']}]" if chunk else task_id


@dataclass
class ImportRun:
    """One DAG run of ``csv_folder_import`` with ``params``: the tries of each task and how each ended."""

    params: dict[str, Any]
    run_id: str = "manual__reliability"
    retries: int = 3
    tries: Counter[str] = field(default_factory=Counter)
    states: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    chunks: list[dict[str, Any]] = field(default_factory=list)
    # Called with (task key, try number) before each try: where a test injects its fault. It
    # returns True when it ran the try itself (in a worker process it started and killed).
    before_try: Callable[[str, int], bool | None] = lambda key, try_number: None

    def run(self) -> ImportRun:
        if not self.run_until_planned():
            return self
        self.import_chunks()
        return self.publish()

    def run_until_planned(self) -> bool:
        return all(self.run_task(task_id) for task_id in BEFORE_IMPORT)

    def import_chunks(self) -> bool:
        # A mapped task: each instance runs whatever its siblings did.
        results = [self.run_task("import_chunk", chunk) for chunk in self.chunks]
        return all(results)

    def publish(self) -> ImportRun:
        chunk_keys = [task_key("import_chunk", chunk) for chunk in self.chunks]
        if all(self.states.get(key) == "success" for key in chunk_keys):
            self.run_task("publish")
        else:
            self.states["publish"] = "upstream_failed"
        return self

    def run_task(self, task_id: str, chunk: Mapping[str, Any] | None = None) -> bool:
        key = task_key(task_id, chunk)
        for try_number in range(1, self.retries + 2):
            self.tries[key] += 1
            if self.before_try(key, try_number):
                continue  # the test ran this try in a worker of its own, which did not finish it
            try:
                returned = call_body(task_id, self.spec(task_id), chunk)
            except AirflowFailException as error:
                self._failed(key, error)
                return False
            except Exception as error:
                self._failed(key, error)
                continue
            if task_id == "plan_chunks":
                self.chunks = returned
            self.states[key] = "success"
            return True
        return False

    def spec(self, task_id: str) -> ImportSpec:
        """What the DAG's task reads from Airflow for this run (see ImportSpec.from_airflow)."""
        return ImportSpec.from_params(self.params, run_id=self.run_id, session_name=f"{DAG_ID}.{task_id}")

    def worker(self, task_id: str, chunk: Mapping[str, Any] | None = None) -> Worker:
        """Start one try of a task in a process of its own, as an Airflow worker would."""
        return Worker(try_task, self.params, self.run_id, task_id, None if chunk is None else dict(chunk))

    @property
    def succeeded(self) -> bool:
        return self.states.get("publish") == "success"

    @property
    def failed_tasks(self) -> list[str]:
        return [key for key, state in self.states.items() if state != "success"]

    def behaviour(self) -> str:
        """What the run did, in a few words: the tries of each task that needed more than one."""
        retried = [f"{key} {count} tries" for key, count in self.tries.items() if count > 1]
        parts = [", ".join(retried) or "no task retried"]
        if self.failed_tasks:
            parts.append("ended " + ", ".join(f"{key} {self.states[key]}" for key in self.failed_tasks))
        return "; ".join(parts)

    def _failed(self, key: str, error: BaseException) -> None:
        self.states[key] = "failed"
        self.errors[key] = f"{type(error).__name__}: {error}"


@dataclass(frozen=True)
class DropOutcome:
    """What a table holds of a drop, against the drop's manifest."""

    rows_lost: int
    rows_doubled: int
    # Target rows from a line the manifest says must be rejected.
    rows_not_rejected: int
    rejects_expected: int
    rejects_missing: int
    rejects_unexpected: int

    @property
    def exact(self) -> bool:
        return not (
            self.rows_lost
            or self.rows_doubled
            or self.rows_not_rejected
            or self.rejects_missing
            or self.rejects_unexpected
        )

    @property
    def rejects(self) -> str:
        """The reject column of the fault table."""
        if not (self.rejects_missing or self.rejects_unexpected):
            return f"{self.rejects_expected}, as the manifest says"
        return (
            f"{self.rejects_missing} of the manifest's {self.rejects_expected} missing, "
            f"{self.rejects_unexpected} unexpected"
        )

    @classmethod
    def measure(cls, conninfo: str, table: str, source: str, manifest: Mapping[str, Any]) -> DropOutcome:
        """Compare ``table`` (schema.name) with ``manifest``, of the drop at ``source`` (its URL).

        A file's rows are found by their lineage (``_source_file_id`` → the file ledger's url and
        member); its rejects are those of the run whose rows the target holds
        (``files.imported_by_run``), as the ledger defines them.
        """
        schema, name = table.split(".", 1)
        with psycopg.connect(conninfo) as conn:
            lines = conn.execute(
                sql.SQL(
                    "SELECT f.url, f.member, t._source_line, count(*) FROM {} t"
                    " JOIN csv_import.files f ON f.id = t._source_file_id GROUP BY 1, 2, 3"
                ).format(sql.Identifier(schema, name))
            ).fetchall()
            rejects = conn.execute(
                "SELECT f.url, f.member, r.line, r.reason FROM csv_import.rejects r"
                " JOIN csv_import.files f ON f.id = r.file_id AND f.imported_by_run = r.run_id"
                " WHERE f.target_schema = %s AND f.target_table = %s AND f.status = 'imported'",
                (schema, name),
            ).fetchall()
        expected_rejects: Counter[tuple] = Counter()
        good_rows: dict[tuple[str, str | None], int] = {}
        for entry in manifest["files"]:
            key = (f"{source}/{entry['path']}", entry["member"])
            good_rows[key] = entry["good_rows"]
            if entry["file_reject"]:
                expected_rejects[(*key, None, entry["file_reject"]["reason"])] += 1
            for reject in entry["rejects"]:
                expected_rejects[(*key, reject["line"], reject["reason"])] += 1
        reject_lines = {(url, member, line) for url, member, line, _ in expected_rejects}
        per_file: Counter[tuple[str, str | None]] = Counter()
        doubled = not_rejected = 0
        for url, member, line, count in lines:
            doubled += count - 1
            if (url, member, line) in reject_lines:
                not_rejected += count
            else:
                per_file[(url, member)] += 1
        # A row of a file the manifest does not know is a row too many.
        doubled += sum(count for key, count in per_file.items() if key not in good_rows)
        lost = sum(max(rows - per_file[key], 0) for key, rows in good_rows.items())
        doubled += sum(max(per_file[key] - rows, 0) for key, rows in good_rows.items())
        found = Counter(map(tuple, rejects))
        return cls(
            rows_lost=lost,
            rows_doubled=doubled,
            rows_not_rejected=not_rejected,
            rejects_expected=sum(expected_rejects.values()),
            rejects_missing=sum((expected_rejects - found).values()),
            rejects_unexpected=sum((found - expected_rejects).values()),
        )


def try_task(params: dict[str, Any], run_id: str, task_id: str, chunk: dict[str, Any] | None) -> None:
    """One try of one task of a run, in this process: a worker's, for a test to kill."""
    run = ImportRun(params, run_id=run_id)
    try:
        call_body(task_id, run.spec(task_id), chunk)
    except AirflowFailException as error:
        # Airflow would not retry this try: say so by the exit code, apart from a retried failure (1).
        print(f"failed for good: {error}", file=sys.stderr)  # noqa: T201 - a worker's report
        sys.exit(FAILED_FOR_GOOD)
