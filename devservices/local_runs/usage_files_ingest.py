"""``make run DAG=usage_files_ingest``: drop usage files into a folder, ingest them once, then report.

Without ``--incoming``, the demo: ``devservices.usage_writer`` drops its files (5 × 8 MB, 10,000
consumers, a few bad lines of every kind) into ``.local/usage_demo/incoming`` when that folder
holds none, with a manifest of what a correct ingest ends with. Starts the local services, runs
``airflow dags test usage_files_ingest``, and prints the run's files, lines, quarantined lines by
reason, duplicates, the time it took and the top consumers, then checks every done file's true
sums (its manifest) against the store's totals: "totals = manifest", or it fails.

Run it again: the same drop is written again, and every file of it is a duplicate (same name,
same content): recorded, archived, applied never. ``--seed`` makes a new drop, which adds.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import psycopg

from devservices.dag_test import LocalAirflow
from devservices.environment import connection_from_env
from devservices.local_services import start_local_services
from devservices.sizes import parse_size
from devservices.usage_demo import demo_folders
from devservices.usage_writer import Manifest, write_files
from include.common.postgres import conninfo_from_connection
from include.usage_ingest.store import RunSummary, run_summary

DAG_ID = "usage_files_ingest"
DEFAULT_CONN_ID = "warehouse_db"

log = logging.getLogger("make run")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    args = _parse_args(argv)
    airflow = LocalAirflow()
    if args.incoming:
        incoming = Path(args.incoming).resolve()
        archive = Path(args.archive).resolve() if args.archive else incoming.parent / "archive"
    else:
        incoming, archive = demo_folders()
        _drop_demo_files(incoming, args)
    params = {"incoming": str(incoming), "archive": str(archive), "connection": args.connection}
    conninfo = conninfo_from_connection(connection_from_env(args.connection))
    with ExitStack() as services:
        start_local_services(services)
        airflow.migrate()
        log.info("ingesting %s", incoming)
        with psycopg.connect(conninfo, connect_timeout=10) as conn:
            (since,) = conn.execute("SELECT now()").fetchone()
        dag_test = airflow.dags_test_now(DAG_ID, params)
        with psycopg.connect(conninfo, connect_timeout=10) as conn:
            (migrated,) = conn.execute("SELECT to_regclass('usage_ingest.files') IS NOT NULL").fetchone()
            summary = _summary(conn, since) if migrated else None
            check = (
                _check_totals(conn, incoming.parent)
                if migrated
                else _Check(False, "the store was never created")
            )
    print(
        f"\n{DAG_ID}: {incoming} → {args.connection}, {dag_test.seconds:.0f} s including Airflow's start-up"
    )
    print(_describe(summary))
    print(check.message)
    print(f"\nAirflow log of the run: {dag_test.log}")
    return 0 if dag_test.succeeded and check.ok else 1


def _drop_demo_files(incoming: Path, args: argparse.Namespace) -> None:
    # Never over files still waiting: rewriting one the store has planned would change it under a run.
    if any(incoming.glob("*.usage")):
        log.info("%s holds usage files already: no new drop", incoming)
        return
    manifest = write_files(
        incoming,
        files=args.files,
        size_bytes=parse_size(args.size),
        consumers=args.consumers,
        bad_share=args.bad_share,
        seed=args.seed,
        # Older than the settle time, so the files are finished at once, and all of the same hour.
        mtime=(datetime.now(UTC) - timedelta(minutes=1)).replace(second=0, microsecond=0),
    )
    log.info(
        "dropped %d files (%s lines) into %s",
        len(manifest.files),
        sum(f.lines for f in manifest.files),
        incoming,
    )


def _summary(conn: psycopg.Connection, since: datetime) -> RunSummary | None:
    """The summary of the run that claimed a file or met a duplicate after ``since`` (the store's clock)."""
    found = conn.execute(
        "SELECT run_id FROM (SELECT claimed_by AS run_id, claimed_at AS at FROM usage_ingest.files"
        " UNION ALL SELECT run_id, seen_at FROM usage_ingest.duplicate_drops) AS seen"
        " WHERE at >= %s ORDER BY at DESC LIMIT 1",
        (since,),
    ).fetchone()
    return None if found is None else run_summary(conn, found[0])


def _describe(summary: RunSummary | None) -> str:
    if summary is None:
        return "files      none finished: the run claimed nothing"
    reasons = "".join(f"\n  {reason:<22} {n:,}" for reason, n in summary.quarantined_by_reason.items())
    top = "".join(f"\n  {consumer:>20} {amount:,}" for consumer, amount in summary.top_consumers)
    return "\n".join(
        [
            f"files      {summary.files:,} added, {summary.duplicates:,} duplicates (archived, not applied)",
            f"lines      {summary.lines:,}: {summary.lines_applied:,} applied, "
            f"{summary.lines_quarantined:,} quarantined{reasons}",
            f"consumers  {summary.consumers_in_store:,} in the store",
            "top consumers (total in the store)" + (top or " none"),
        ]
    )


class _Check(NamedTuple):
    ok: bool
    message: str


def _check_totals(conn: psycopg.Connection, manifests_folder: Path) -> _Check:
    """The store's totals against the true sums of every done file, from the writer's manifests."""
    known: dict[tuple[str, str], tuple[Manifest, str]] = {}
    for path in sorted(manifests_folder.glob("*manifest.json")):
        manifest = Manifest.load(path)
        for entry in manifest.files:
            known[entry.name, entry.sha256] = (manifest, entry.name)
    done = conn.execute("SELECT name, sha256 FROM usage_ingest.files WHERE state = 'done'").fetchall()
    unknown = [name for name, sha256 in done if (name, sha256) not in known]
    if unknown:
        return _Check(
            True, f"totals not checked: {len(unknown)} done file(s) have no manifest (e.g. {unknown[0]})"
        )
    expected: Counter[int] = Counter()
    for key in done:
        manifest, name = known[key]
        expected.update(manifest.file_totals(name))
    stored = dict(conn.execute("SELECT consumer_id, amount FROM usage_ingest.consumer_totals").fetchall())
    expected_totals = dict(expected)
    if stored == expected_totals:
        return _Check(True, f"totals = manifest ({len(stored):,} consumers, {len(done)} done files)")
    differing = sum(
        1 for c in stored.keys() | expected_totals.keys() if stored.get(c) != expected_totals.get(c)
    )
    return _Check(
        False,
        f"totals ≠ manifest: {differing:,} consumers differ from the true sums of the {len(done)} done files",
    )


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make run DAG=usage_files_ingest ARGS=...",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--incoming", help="folder (absolute) to ingest (default: the demo folder, with a drop)"
    )
    parser.add_argument("--archive", help="where processed files go (default: archive/ beside incoming)")
    parser.add_argument(
        "--connection", default=DEFAULT_CONN_ID, help="the store's Postgres connection (%(default)s)"
    )
    parser.add_argument("--files", type=int, default=5, help="demo drop: files (5)")
    parser.add_argument("--size", default="8MB", help="demo drop: size of each file (8MB)")
    parser.add_argument("--consumers", type=int, default=10_000, help="demo drop: distinct consumers (10000)")
    parser.add_argument(
        "--bad-share", type=float, default=0.001, help="demo drop: share of bad lines (0.001)"
    )
    parser.add_argument("--seed", type=int, default=1, help="demo drop: seed; a new seed is a new drop (1)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
