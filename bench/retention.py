"""Landing retention measured: the warehouse after a month with and without it, a day dropped or deleted.

    python -m bench.retention [--days 30] [--records 100000] [--retention-days 14] [--write-docs]

``python -m bench`` runs the same measurement (``measure``) unless ``--quick`` or
``--no-retention``; run alone, this module starts its own PostgreSQL and simulator, and
``--write-docs`` rewrites only its section of docs/PERFORMANCE.md.

Two warehouses receive the same simulated days, each day run through extract, validate, load and
compute_stats (the functions the DAG's tasks call, in this process). In one, nothing is removed;
in the other, ``purge_old_landing`` runs after each day with the cutoff ``airflow_maintenance``'s
run at 03:00 UTC the next morning would use. Their sizes are read at the end: the whole
database (``pg_database_size``), the landing and staging partitions, and the rest of the schema.

Then, in the warehouse without retention, the oldest day's landing and staging go both ways,
each timed after a CHECKPOINT: retention drops the oldest day's partitions; the next day's rows
are deleted with the DELETE statements a rerun uses (what retention would do without partitions),
and the space they take is read after the DELETE and after a VACUUM.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench import report
from bench.services import checkpoint, local_postgres, simulator_process
from devservices.environment import PROJECT_ROOT
from devservices.postgres import LocalPostgres
from devservices.simulator.process import SimulatorProcess
from include.common.intervals import Interval
from include.learning_platform.api import LearningPlatformClient
from include.learning_platform.extract import extract_interval
from include.learning_platform.landing_retention import DEFAULT_RETENTION_DAYS, purge_old_landing
from include.learning_platform.load import load_interval
from include.learning_platform.partitions import day_partitions
from include.learning_platform.stats import compute_daily_stats
from include.learning_platform.validate import validate_interval
from include.learning_platform.warehouse import interval_params, migrate_schema, sql

log = logging.getLogger("bench")

FIRST_DAY = date(2026, 3, 1)
DAYS = 30
RECORDS_PER_DAY = 100_000
WINDOW = timedelta(hours=1)
KEPT, DROPPED = "bench_retention_none", "bench_retention_daily"
DEFAULT_STATE_DIR = PROJECT_ROOT / ".local" / "bench-retention"
DOCS = PROJECT_ROOT / "docs" / "PERFORMANCE.md"
# The rows a rerun replaces, in the order validate and extract delete them.
DELETES = ("delete_staged", "delete_rejections", "delete_raw")


@dataclass(frozen=True, slots=True)
class Sizes:
    database: int
    landing_and_staging: int
    rest_of_schema: int  # attempts, quarantine, ledgers, figures

    def as_dict(self) -> dict[str, int]:
        return {
            "database": self.database,
            "landing_and_staging": self.landing_and_staging,
            "rest_of_schema": self.rest_of_schema,
        }


def measure(
    server: LocalPostgres,
    simulator: SimulatorProcess,
    *,
    days: int = DAYS,
    records: int = RECORDS_PER_DAY,
    retention_days: int = DEFAULT_RETENTION_DAYS,
) -> dict[str, Any]:
    """The figures of a month with and without retention, and of a day dropped against deleted."""
    for name in (KEPT, DROPPED):
        server.drop_database(name)
        server.create_database(name)
    simulator.set_records_per_day(records)
    started = time.perf_counter()
    purge_s: list[float] = []
    with (
        psycopg.connect(server.conninfo(KEPT)) as kept,
        psycopg.connect(server.conninfo(DROPPED)) as dropped,
        LearningPlatformClient(simulator.base_url, simulator.client, simulator.client_key) as client,
    ):
        for conn in (kept, dropped):
            migrate_schema(conn)
        for offset in range(days):
            day = FIRST_DAY + timedelta(days=offset)
            for conn in (kept, dropped):
                _run_day(conn, client, day)
            # airflow_maintenance the next morning: anchor the next day 03:00, cutoff N days before it.
            oldest_kept = day + timedelta(days=1) - timedelta(days=retention_days)
            purge_started = time.perf_counter()
            purge_old_landing(dropped, oldest_kept, dry_run=False)
            purge_s.append(time.perf_counter() - purge_started)
            log.info("retention: day %d of %d (%s) in both warehouses", offset + 1, days, day)
        run_s = time.perf_counter() - started
        without, with_retention = _sizes(kept), _sizes(dropped)
        one_day = _drop_against_delete(server, kept)
    log.info(
        "retention: %d days of %d attempts: %.0f MB without retention, %.0f MB with",
        days,
        records,
        without.database / 1e6,
        with_retention.database / 1e6,
    )
    return {
        "measured": True,
        "days": days,
        "records_per_day": records,
        "retention_days": retention_days,
        "without_retention": without.as_dict(),
        "with_retention": with_retention.as_dict(),
        "daily_purge_max_s": round(max(purge_s), 3),
        "one_day": one_day,
        "run_s": round(run_s, 1),
    }


def not_measured(why: str) -> dict[str, Any]:
    return {"measured": False, "why": why}


def _run_day(conn: psycopg.Connection, client: LearningPlatformClient, day: date) -> None:
    interval, run_id = Interval.for_day(day), f"bench_retention__{day}"
    extract_interval(conn, client, interval, window=WINDOW, dag_run_id=run_id)
    validate_interval(conn, interval)
    load_interval(conn, interval, dag_run_id=run_id)
    compute_daily_stats(conn, interval, dag_run_id=run_id)


def _sizes(conn: psycopg.Connection) -> Sizes:
    with conn.cursor() as cursor:
        (database,) = cursor.execute("SELECT pg_database_size(current_database())").fetchone()
        (schema,) = cursor.execute(
            "SELECT sum(pg_total_relation_size(oid))::bigint FROM pg_class "
            "WHERE relnamespace = 'learning_platform'::regnamespace AND relkind = 'r'"
        ).fetchone()
        partitions = sum(p.bytes for day in day_partitions(cursor).values() for p in day)
    conn.commit()
    return Sizes(database=database, landing_and_staging=partitions, rest_of_schema=schema - partitions)


def _drop_against_delete(server: LocalPostgres, conn: psycopg.Connection) -> dict[str, Any]:
    """The oldest day dropped by retention, the next one deleted row by row, each after a CHECKPOINT."""
    with conn.cursor() as cursor:
        partitions = day_partitions(cursor)
    conn.commit()
    dropped_day, deleted_day = FIRST_DAY, FIRST_DAY + timedelta(days=1)
    conninfo = server.conninfo(KEPT)

    checkpoint(conninfo)
    started = time.perf_counter()
    purge = purge_old_landing(conn, deleted_day, dry_run=False)
    drop_s = time.perf_counter() - started
    if purge.dropped != [dropped_day]:
        raise RuntimeError(f"retention was to drop {dropped_day} alone, it reported {purge.summary()}")

    day_bytes = sum(p.bytes for p in partitions[deleted_day])
    checkpoint(conninfo)
    rows = 0
    started = time.perf_counter()
    with conn.transaction(), conn.cursor() as cursor:
        for statement in DELETES:
            cursor.execute(sql(statement), interval_params(Interval.for_day(deleted_day)))
            rows += cursor.rowcount
    delete_s = time.perf_counter() - started
    after_delete = _day_bytes(conn, deleted_day)
    with psycopg.connect(conninfo, autocommit=True) as vacuum:
        started = time.perf_counter()
        vacuum.execute(
            "VACUUM learning_platform.raw_attempts, learning_platform.staged_attempts, "
            "learning_platform.staged_rejections"
        )
        vacuum_s = time.perf_counter() - started
    return {
        "bytes": day_bytes,
        "rows": rows,
        "drop_s": round(drop_s, 3),
        "delete_s": round(delete_s, 3),
        "bytes_after_delete": after_delete,
        "vacuum_s": round(vacuum_s, 3),
        "bytes_after_vacuum": _day_bytes(conn, deleted_day),
    }


def _day_bytes(conn: psycopg.Connection, day: date) -> int:
    with conn.cursor() as cursor:
        size = sum(p.bytes for p in day_partitions(cursor).get(day, []))
    conn.commit()
    return size


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    logging.getLogger("include").setLevel(logging.WARNING)  # a line per stage and day: noise here
    parser = argparse.ArgumentParser(
        prog="python -m bench.retention",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--days", type=int, default=DAYS, help="simulated days (default %(default)s)")
    add("--records", type=int, default=RECORDS_PER_DAY, help="attempts a day (default %(default)s)")
    add("--retention-days", type=int, default=DEFAULT_RETENTION_DAYS, help="days kept (default %(default)s)")
    add(
        "--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="cluster and results (default: %(default)s)"
    )
    add("--write-docs", action="store_true", help="rewrite the retention section of docs/PERFORMANCE.md")
    args = parser.parse_args(argv)
    if args.days < args.retention_days + 2:
        parser.error("--days must exceed --retention-days by 2 or more: retention must have days to drop")
    state_dir: Path = args.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    with (
        local_postgres(state_dir) as server,
        simulator_process(args.records, state_dir / "simulator.log") as simulator,
    ):
        figures = measure(
            server, simulator, days=args.days, records=args.records, retention_days=args.retention_days
        )
        with psycopg.connect(server.conninfo()) as conn:
            (postgres_version,) = conn.execute("SHOW server_version").fetchone()
    figures["machine"] = {**report.machine(), "postgres": postgres_version}
    print("\n".join(report.retention_text(figures)))
    (state_dir / "retention.json").write_text(json.dumps(figures, indent=2) + "\n")
    if args.write_docs:
        report.write_retention_section(figures, DOCS)
        log.info("wrote the retention section of %s", DOCS)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
