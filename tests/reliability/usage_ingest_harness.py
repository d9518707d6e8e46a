"""Run ``usage_files_ingest``'s steps as its tasks do, in workers a test can kill, and judge the store.

``IngestRun`` is one DAG run: ``claim`` (the ``claim_files`` task's body), ``process`` (one
``process_range``'s body) and ``finish`` (``finish_files``'s body), called in this process with
the ``IngestSpec`` the task would build, against the store the ``warehouse_db`` connection names
(``AIRFLOW_CONN_WAREHOUSE_DB``, as in a deployment).

``IngestRun.worker`` runs one try of one range in a process of its own
(``python -m tests.reliability.usage_ingest_harness``), so that a test can SIGKILL it: it calls
``include.usage_ingest.ingest.process_range``, the function the task's body calls, on a
connection opened from ``USAGE_STORE_CONNINFO`` (a test may point it at a proxy). It does not
import Airflow, which would take seconds per worker: the kill test starts a new one for every
kill. It prints its ``RangeResult`` as JSON; a failure exits 1 with the traceback on stderr.

``StoreOutcome`` compares the store with the writer's manifests (``devservices.usage_writer``),
never with a count the pipeline made itself.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import psycopg

from devservices.environment import PROJECT_ROOT
from devservices.usage_writer import Manifest
from include.usage_ingest import store
from include.usage_ingest.ingest import process_range
from include.usage_ingest.lines import read_batches
from include.usage_ingest.model import BatchLimits
from include.usage_ingest.settings import DEFAULT_LEASE, IngestSpec

DAG_ID = "usage_files_ingest"
CONNINFO_ENV = "USAGE_STORE_CONNINFO"


@dataclass
class IngestRun:
    """One run of ``usage_files_ingest`` with ``params``: its task bodies, called as its tasks call them."""

    params: dict[str, Any]
    run_id: str = "manual__reliability"
    # Batches below the params' 1 MiB minimum, so that a small file has many.
    limits: BatchLimits | None = None
    claimed: list[dict[str, Any]] = field(default_factory=list)

    def spec(self, task_id: str) -> IngestSpec:
        spec = IngestSpec.from_params(self.params, run_id=self.run_id, session_name=f"{DAG_ID}.{task_id}")
        return spec if self.limits is None else replace(spec, limits=self.limits)

    def claim(self, now: datetime) -> list[dict[str, Any]]:
        """``claim_files`` at ``now`` (the scan's clock): the ranges this run holds, left to process."""
        from include.usage_ingest import tasks

        self.claimed = tasks.claim(self.spec("claim_files"), now=now)
        return self.claimed

    def process(self, key: dict[str, Any]) -> dict[str, Any]:
        from include.usage_ingest import tasks

        return tasks.process(self.spec("process_range"), key["file_id"], key["range_no"])

    def finish(self) -> dict[str, Any]:
        from airflow.sdk.execution_time.context import OutletEventAccessors

        from include.usage_ingest import tasks

        return tasks.finish(self.spec("finish_files"), OutletEventAccessors())

    def run(self, now: datetime) -> dict[str, Any]:
        """The whole run, every mapped range one after the other."""
        for key in self.claim(now):
            self.process(key)
        return self.finish()

    def worker(self, key: dict[str, Any], conninfo: str, *, name: str) -> subprocess.Popen[str]:
        """One try of ``process_range`` for ``key`` in a process of its own; its session is ``name``."""
        limits = self.spec("process_range").limits
        arguments = [
            *("--file-id", str(key["file_id"]), "--range-no", str(key["range_no"])),
            *("--batch-bytes", str(limits.max_bytes), "--max-consumers", str(limits.max_consumers)),
            *("--run-id", self.run_id, "--session-name", name),
        ]
        return subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.usage_ingest_harness", *arguments],
            cwd=PROJECT_ROOT,
            env={**os.environ, CONNINFO_ENV: conninfo},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@dataclass(frozen=True)
class StoreOutcome:
    """What the store holds against the manifests of every file dropped (by name and sha256)."""

    lines_lost: int  # lines of the files no committed batch covers
    lines_doubled: int  # lines covered by more than one committed batch
    units_off: int  # Σ |total − manifest's total| over consumers, plus the same over hours
    quarantine_expected: int
    quarantine_missing: int
    quarantine_unexpected: int
    files_unbalanced: int  # files whose applied / quarantined lines differ from the manifest's
    files_not_done: int

    @property
    def exact(self) -> bool:
        return not (
            self.lines_lost
            or self.lines_doubled
            or self.units_off
            or self.quarantine_missing
            or self.quarantine_unexpected
            or self.files_unbalanced
            or self.files_not_done
        )

    @property
    def quarantined(self) -> str:
        """The fault table's column."""
        if not (self.quarantine_missing or self.quarantine_unexpected):
            return f"{self.quarantine_expected}, as the manifest says (line and reason)"
        return (
            f"{self.quarantine_missing} of the manifest's {self.quarantine_expected} missing, "
            f"{self.quarantine_unexpected} unexpected"
        )

    @classmethod
    def measure(cls, conninfo: str, manifests: Iterable[Manifest]) -> StoreOutcome:
        """Lines by the checkpoint log's coverage; units by the totals and the hourly sums;
        quarantine by line number and reason; each file's books by the manifest's counts."""
        manifests = list(manifests)
        entries = {(e.name, e.sha256): (m, e) for m in manifests for e in m.files}
        with psycopg.connect(conninfo) as conn:
            files = {
                (name, sha): (file_id, hour, state)
                for file_id, name, sha, hour, state in conn.execute(
                    "SELECT file_id, name, sha256, arrival_hour, state FROM usage_ingest.files"
                )
            }
            batches = conn.execute(
                "SELECT file_id, first_line, lines_applied, lines_quarantined FROM usage_ingest.batches"
            ).fetchall()
            totals = dict(conn.execute("SELECT consumer_id, amount FROM usage_ingest.consumer_totals"))
            hourly = {
                (hour, consumer): amount
                for hour, consumer, amount in conn.execute(
                    "SELECT hour, consumer_id, amount FROM usage_ingest.usage_hourly"
                )
            }
            quarantine = Counter(
                conn.execute(
                    "SELECT f.name, f.sha256, q.line_number, q.reason FROM usage_ingest.quarantine AS q"
                    " JOIN usage_ingest.files AS f USING (file_id)"
                ).fetchall()
            )
        unknown = files.keys() - entries.keys()
        if unknown:
            raise AssertionError(f"the store has files no manifest wrote: {sorted(unknown)}")
        spans: dict[int, list[tuple[int, int]]] = {}
        applied: Counter[int] = Counter()
        quarantined: Counter[int] = Counter()
        for file_id, first, good, bad in batches:
            spans.setdefault(file_id, []).append((first, first + good + bad))
            applied[file_id] += good
            quarantined[file_id] += bad
        lost = doubled = unbalanced = not_done = 0
        expected_totals: Counter[int] = Counter()
        expected_hourly: Counter[tuple[datetime, int]] = Counter()
        expected_quarantine: Counter[tuple[str, str, int, str]] = Counter()
        for key, (manifest, entry) in entries.items():
            sums = manifest.file_totals(entry.name)
            expected_totals.update(sums)
            for line, reason in manifest.bad_lines(entry.name):
                expected_quarantine[(*key, line, reason.value)] += 1
            if key not in files:
                lost += entry.lines
                unbalanced += 1
                not_done += 1
                continue
            file_id, hour, state = files[key]
            union, total = _coverage(spans.get(file_id, []), entry.lines)
            lost += entry.lines - union
            doubled += total - union
            unbalanced += (applied[file_id], quarantined[file_id]) != (
                entry.applied_lines,
                entry.lines - entry.applied_lines,
            )
            not_done += state != "done"
            for consumer, amount in sums.items():
                expected_hourly[(hour, consumer)] += amount
        units_off = _distance(totals, expected_totals) + _distance(hourly, expected_hourly)
        return cls(
            lines_lost=lost,
            lines_doubled=doubled,
            units_off=units_off,
            quarantine_expected=sum(expected_quarantine.values()),
            quarantine_missing=sum((expected_quarantine - quarantine).values()),
            quarantine_unexpected=sum((quarantine - expected_quarantine).values()),
            files_unbalanced=unbalanced,
            files_not_done=not_done,
        )


def _coverage(spans: list[tuple[int, int]], lines: int) -> tuple[int, int]:
    """Of lines [first, end) spans: how many of the file's lines 1..``lines`` they cover, and
    their total length (more than the first where they overlap or reach past the file)."""
    union, reach = 0, 1
    for first, end in sorted(spans):
        first, clipped = max(first, reach), min(end, lines + 1)
        if clipped > first:
            union += clipped - first
        reach = max(reach, end)
    return union, sum(end - first for first, end in spans)


def _distance(found: dict, expected: Counter) -> int:
    return sum(abs(found.get(key, 0) - expected.get(key, 0)) for key in found.keys() | expected.keys())


def lease_expired(conninfo: str, file_id: int) -> None:
    """Move a claim's lease into the past: the clock as it reads once the lease's time has gone by."""
    with psycopg.connect(conninfo) as conn:
        conn.execute(
            "UPDATE usage_ingest.files SET lease_until = now() - interval '1 second' WHERE file_id = %s",
            (file_id,),
        )


def commit_first_batches(conninfo: str, run: IngestRun, key: dict[str, Any], count: int) -> None:
    """Commit a range's first ``count`` batches with the pipeline's own functions, as an earlier
    try of the range would have: what follows starts mid-file."""
    spec = run.spec("process_range")
    with psycopg.connect(conninfo) as conn:
        state = store.range_state(conn, key["file_id"], key["range_no"])
        batches = read_batches(
            state.path,
            start=state.committed_offset,
            end=state.end_offset,
            first_line=state.next_line,
            limits=spec.limits,
        )
        for batch in islice(batches, count):
            assert store.apply_batch(
                conn, key["file_id"], key["range_no"], batch, committed_by=run.run_id, lease=spec.lease
            )


def committed_batches(conn: psycopg.Connection, file_id: int) -> int:
    return conn.execute(
        "SELECT count(*) FROM usage_ingest.batches WHERE file_id = %s", (file_id,)
    ).fetchone()[0]


def arrival(hour: int) -> datetime:
    """An mtime in the given hour of a fixed day, long settled by any scan's clock used here."""
    return datetime(2026, 12, 6, hour, 41, 7, tzinfo=UTC)


LATER = datetime(2026, 12, 7, tzinfo=UTC)


def main(argv: list[str] | None = None) -> int:
    """One try of one range, in this process: a worker's, for a test to kill."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--file-id", type=int, required=True)
    parser.add_argument("--range-no", type=int, required=True)
    parser.add_argument("--batch-bytes", type=int, required=True)
    parser.add_argument("--max-consumers", type=int, required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--session-name", required=True)
    args = parser.parse_args(argv)
    with psycopg.connect(os.environ[CONNINFO_ENV], application_name=args.session_name) as conn:
        result = process_range(
            conn,
            args.file_id,
            args.range_no,
            limits=BatchLimits(args.batch_bytes, args.max_consumers),
            committed_by=args.run_id,
            lease=DEFAULT_LEASE,
        )
    print(json.dumps(asdict(result)))  # noqa: T201 - the worker's answer to the test
    return 0


if __name__ == "__main__":
    sys.exit(main())
