"""``make run DAG=csv_folder_import``: import a folder of CSV files on this machine, then report.

Without ``--source``, imports the demo drop: energy certificates generated once into
``.local/csv_drop/<size>-<files>files-seed<seed>`` (``devservices.csv_demo``: a few defective lines
of every kind, some files zipped, a manifest of what a correct import ends with). Starts the
local services, runs ``airflow dags test csv_folder_import`` with the chosen params, and prints
the files, rows and rejects by reason of the run, how long it took, and the table. Run it again:
an ``append`` imports nothing twice.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections import Counter
from contextlib import ExitStack

import psycopg
from psycopg import sql

from devservices.csv_demo import DEMO_TABLE, demo_drop
from devservices.dag_test import LocalAirflow
from devservices.environment import connection_from_env
from devservices.local_services import start_local_services
from include.common.postgres import conninfo_from_connection
from include.csv_import.ledger import read_run
from include.csv_import.table import parse_table_name, target_columns
from include.csv_import.verify import file_counts

DAG_ID = "csv_folder_import"
DEFAULT_TABLE = DEMO_TABLE
DEFAULT_CONN_ID = "warehouse_db"
SAMPLE_ROWS = 5

log = logging.getLogger("make run")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    args = _parse_args(argv)
    airflow = LocalAirflow()
    source = args.source or str(demo_drop(args.size, args.files, args.seed))
    params = {"source": source, "table": args.table, "mode": args.mode, "connection": args.connection}
    if args.max_rejected_share is not None:
        params["max_rejected_share"] = args.max_rejected_share
    with ExitStack() as services:
        start_local_services(services)
        airflow.migrate()
        log.info("importing %s into %s (%s)", source, args.table, args.mode)
        dag_test = airflow.dags_test_now(DAG_ID, params)
        report = _report(args.connection, args.table)
    if report is None:
        log.error(
            "the run did not publish into %s (airflow exit code %d); see %s",
            args.table,
            dag_test.returncode,
            dag_test.log,
        )
        return 1
    print(
        f"\n{DAG_ID}: {source} → {args.table} ({args.mode}), "
        f"{dag_test.seconds:.0f} s including Airflow's start-up"
    )
    print(report)
    print(f"\nAirflow log of the run: {dag_test.log}")
    return 0 if dag_test.succeeded else 1


def _report(conn_id: str, table: str) -> str | None:
    """The latest run into ``table``: its files, rows and rejects, and the table's first rows."""
    conninfo = conninfo_from_connection(connection_from_env(conn_id))
    target = parse_table_name(table)
    with psycopg.connect(conninfo, connect_timeout=10) as conn:
        try:
            found = conn.execute(
                "SELECT max(id) FROM csv_import.runs WHERE target_schema = %s AND target_table = %s",
                (target.schema, target.name),
            ).fetchone()[0]
        except psycopg.errors.UndefinedTable:
            return None
        run = None if found is None else read_run(conn, found)
        if run is None or run.published_at is None:
            return None
        counts = file_counts(conn, run.id)
        reasons = conn.execute(
            "SELECT reason, count(*) FROM csv_import.rejects WHERE run_id = %s GROUP BY 1 ORDER BY 2 DESC",
            (run.id,),
        ).fetchall()
        (total,) = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(target.identifier)).fetchone()
        with conn.cursor() as cursor:
            columns = target_columns(cursor, target)
        sample = conn.execute(
            sql.SQL("SELECT * FROM {} ORDER BY _source_file_id, _source_line LIMIT %s").format(
                target.identifier
            ),
            (SAMPLE_ROWS,),
        ).fetchall()
    outcomes = Counter(count.outcome or "not published" for count in counts)
    lines = [
        f"files      {', '.join(f'{outcome} {n}' for outcome, n in sorted(outcomes.items()))}",
        f"rows       {sum(c.rows for c in counts):,} imported by this run; {total:,} in {table}",
        f"rejects    {sum(c.rejects for c in counts):,}"
        + "".join(f"\n  {reason:<20} {n:,}" for reason, n in reasons),
        f"published  by {run.publish_method or 'nothing'} ({run.publish_note}); rejected lines in "
        f"csv_import.rejects (run_id = {run.id})",
        f"\n{table}: " + ", ".join(f"{column.name} {column.type}" for column in columns),
    ]
    width = 24
    for row in sample:
        lines.append(" | ".join(_cell(value, width) for value in row))
    return "\n".join(lines)


def _cell(value: object, width: int) -> str:
    text = "" if value is None else str(value).replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make run DAG=csv_folder_import ARGS=...",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--source", help="folder (absolute) or s3:// URL to import (default: the demo drop)")
    parser.add_argument(
        "--table", default=DEFAULT_TABLE, help="destination schema.table (default %(default)s)"
    )
    parser.add_argument("--mode", choices=("append", "replace"), default="append")
    parser.add_argument(
        "--connection", default=DEFAULT_CONN_ID, help="destination Postgres connection (default %(default)s)"
    )
    parser.add_argument(
        "--max-rejected-share",
        type=float,
        help="the run fails, publishing nothing, above this share of rejected lines (default: the DAG's)",
    )
    parser.add_argument(
        "--size", default=os.environ.get("CSV_DEMO_SIZE", "50MB"), help="demo drop size (50MB)"
    )
    parser.add_argument("--files", type=int, default=8, help="demo drop data files (8, plus 2 defective)")
    parser.add_argument("--seed", type=int, default=1, help="demo drop seed (1)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
