"""Account for every line of a run: per file, rows in the target + rejects = records read.

The chunk ledger says how many rows and rejects each chunk's import committed; the target and
the reject table say what is really there. :func:`verify_run` compares them per file after
publish (a file's rows are found by their lineage, ``_source_file_id``), so that a row lost or
doubled anywhere between the reader and the target fails the run instead of passing unseen.

:func:`summarize` gives the run's totals for the task log and the asset event, and
:func:`check_rejected_share` is the ``max_rejected_share`` gate: it reads only the ledgers, so it
can run before publish and keep a bad drop out of the target.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg
from psycopg import sql

from include.common.failures import PermanentFailure
from include.csv_import.ledger import read_run
from include.csv_import.model import SourceFile
from include.csv_import.warehouse import sql as query

log = logging.getLogger(__name__)

# How many files the rejected-share error lists by name; the rest are counted.
NAMED_FILES = 20


class RowsUnaccounted(PermanentFailure):
    """The target does not hold what the ledger says was imported: rows were lost or doubled."""


class TooManyRejects(PermanentFailure):
    """More of the drop was rejected than the run allows (``max_rejected_share``)."""


@dataclass(frozen=True, slots=True)
class FileCount:
    file_id: int
    name: str
    size: int
    # 'imported', 'replaced', 'skipped', or None before publish.
    outcome: str | None
    # The target still holds this run's rows of the file (no later run replaced them).
    current: bool
    rows: int
    rejects: int
    stored_rejects: int

    @property
    def records(self) -> int:
        return self.rows + self.rejects

    @property
    def published(self) -> bool:
        return self.outcome in ("imported", "replaced")


@dataclass(frozen=True, slots=True)
class RunSummary:
    run_id: int
    target: str
    files: int
    files_skipped: int
    rows: int
    bytes: int
    rejects_by_reason: dict[str, int]

    @property
    def rejects(self) -> int:
        return sum(self.rejects_by_reason.values())

    def as_asset_extra(self) -> dict[str, object]:
        """What downstream DAGs read from the asset event (plain JSON)."""
        return {
            "run_id": self.run_id,
            "table": self.target,
            "files": self.files,
            "files_skipped": self.files_skipped,
            "rows": self.rows,
            "bytes": self.bytes,
            "rejects": self.rejects,
            "rejects_by_reason": dict(self.rejects_by_reason),
        }

    def describe(self) -> str:
        """One line for the task log."""
        reasons = ", ".join(f"{reason} {count}" for reason, count in self.rejects_by_reason.items())
        return (
            f"{self.target}: {self.files} file(s) imported "
            f"({self.files_skipped} skipped as already imported), "
            f"{self.rows} row(s), {self.bytes} byte(s), {self.rejects} rejected"
            + (f" ({reasons})" if reasons else "")
        )


def file_counts(conn: psycopg.Connection, run_id: int) -> list[FileCount]:
    with conn.transaction():
        rows = conn.execute(query("select_run_file_counts"), {"run_id": run_id}).fetchall()
    return [
        FileCount(
            file_id, SourceFile(url, member, size, fingerprint).name, size, outcome, current, n, r, stored
        )
        for file_id, url, member, size, fingerprint, outcome, current, n, r, stored in rows
    ]


def verify_run(conn: psycopg.Connection, run_id: int) -> RunSummary:
    """Check every published file of the run against the target and the reject table."""
    run = read_run(conn, run_id)
    target_table = sql.Identifier(run.target.schema, run.target.name)
    with conn.transaction():
        # Publishers wait while the target is counted, so that its rows and the ledger agree.
        conn.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(target_table))
        published = [c for c in file_counts(conn, run_id) if c.published]
        counts = [c for c in published if c.current]
        in_target = dict(
            conn.execute(
                sql.SQL(
                    "SELECT _source_file_id, count(*) FROM {}"
                    " WHERE _source_file_id = ANY(%(file_ids)s) GROUP BY 1"
                ).format(target_table),
                {"file_ids": [c.file_id for c in counts]},
            ).fetchall()
        )
    if len(counts) < len(published):
        log.info(
            "csv_import run %d: %d file(s) not verified, as a later run replaced or removed their rows",
            run_id,
            len(published) - len(counts),
        )
    wrong = [
        f"{c.name}: {in_target.get(c.file_id, 0)} row(s) in the target and {c.stored_rejects} reject(s) "
        f"stored, the ledger says {c.rows} and {c.rejects}"
        for c in counts
        if in_target.get(c.file_id, 0) != c.rows or c.stored_rejects != c.rejects
    ]
    if wrong:
        raise RowsUnaccounted(
            f"csv_import run {run_id} into {run.target}: {len(wrong)} file(s) do not add up: "
            + "; ".join(wrong[:NAMED_FILES])
            + ". Something changed the target or the reject table during the run, or rows were lost: "
            "rerun the DAG in replace mode, or investigate before the data is used"
        )
    summary = summarize(conn, run_id)
    log.info("verified csv_import run %d: %s", run_id, summary.describe())
    return summary


def summarize(conn: psycopg.Connection, run_id: int) -> RunSummary:
    """The run's totals: of the files it published, or of all its files before publish."""
    run = read_run(conn, run_id)
    counts = file_counts(conn, run_id)
    published = run.published_at is not None
    taken = [c for c in counts if c.published or not published]
    with conn.transaction():
        reasons = dict(
            conn.execute(
                query("select_reject_reasons"), {"run_id": run_id, "file_ids": [c.file_id for c in taken]}
            ).fetchall()
        )
    return RunSummary(
        run_id=run_id,
        target=str(run.target),
        files=len(taken),
        files_skipped=sum(c.outcome == "skipped" for c in counts),
        rows=sum(c.rows for c in taken),
        bytes=sum(c.size for c in taken),
        rejects_by_reason=reasons,
    )


def check_rejected_share(conn: psycopg.Connection, run_id: int, max_share: float) -> None:
    """Fail the run, naming files and counts, when more than ``max_share`` of its records were rejected."""
    counts = [c for c in file_counts(conn, run_id) if c.outcome != "skipped"]
    records = sum(c.records for c in counts)
    rejects = sum(c.rejects for c in counts)
    if records == 0 or rejects / records <= max_share:
        return
    offenders = sorted((c for c in counts if c.rejects), key=lambda c: c.rejects, reverse=True)
    named = "; ".join(f"{c.name}: {c.rejects} of {c.records} rejected" for c in offenders[:NAMED_FILES])
    more = f"; and {len(offenders) - NAMED_FILES} more file(s)" if len(offenders) > NAMED_FILES else ""
    raise TooManyRejects(
        f"csv_import run {run_id}: {rejects} of {records} record(s) rejected ({rejects / records:.2%}), "
        f"more than max_rejected_share {max_share:.2%}. {named}{more}. The reasons are in csv_import.rejects "
        f"(WHERE run_id = {run_id}); fix the files or the column_types, or raise max_rejected_share"
    )
