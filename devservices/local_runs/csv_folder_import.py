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
import time
from contextlib import ExitStack
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from devservices.csv_demo import DEMO_TABLE, demo_drop
from devservices.dag_test import LocalAirflow
from devservices.environment import connection_from_env
from devservices.local_services import start_local_services
from include.common.postgres import conninfo_from_connection

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
        started = time.monotonic()
        dag_test = airflow.dags_test(
            DAG_ID,
            datetime.now(UTC).isoformat(timespec="seconds"),
            params,
            log_name="dags-test-csv_folder_import",
        )
        seconds = time.monotonic() - started
        report = _report(args.connection, args.table)
    if report is None:
        log.error(
            "the run did not publish into %s (airflow exit code %d); see %s",
            args.table,
            dag_test.returncode,
            dag_test.log,
        )
        return 1
    print(f"\n{DAG_ID}: {source} → {args.table} ({args.mode}), {seconds:.0f} s including Airflow's start-up")
    print(report)
    print(f"\nAirflow log of the run: {dag_test.log}")
    return 0 if dag_test.succeeded else 1


def _report(conn_id: str, table: str) -> str | None:
    """The latest run into ``table``: its files, rows and rejects, and the table's first rows."""
    conninfo = conninfo_from_connection(connection_from_env(conn_id))
    schema, name = table.split(".", 1)
    with psycopg.connect(conninfo, connect_timeout=10) as conn:
        try:
            run = conn.execute(
                "SELECT id, published_at, publish_method, publish_note FROM csv_import.runs"
                " WHERE target_schema = %s AND target_table = %s ORDER BY id DESC LIMIT 1",
                (schema, name),
            ).fetchone()
        except psycopg.errors.UndefinedTable:
            return None
        if run is None or run[1] is None:
            return None
        run_id, _, method, note = run
        files = conn.execute(
            "SELECT coalesce(outcome, 'not published'), count(*) FROM csv_import.run_files"
            " WHERE run_id = %s GROUP BY 1 ORDER BY 1",
            (run_id,),
        ).fetchall()
        staged, rejected = conn.execute(
            "SELECT coalesce(sum(rows), 0), coalesce(sum(rejects), 0) FROM csv_import.chunks"
            " WHERE run_id = %s",
            (run_id,),
        ).fetchone()
        reasons = conn.execute(
            "SELECT reason, count(*) FROM csv_import.rejects WHERE run_id = %s GROUP BY 1 ORDER BY 2 DESC",
            (run_id,),
        ).fetchall()
        target = sql.Identifier(schema, name)
        (total,) = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(target)).fetchone()
        columns = conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            (target.as_string(conn),),
        ).fetchall()
        sample = conn.execute(
            sql.SQL("SELECT * FROM {} ORDER BY _source_file_id, _source_line LIMIT %s").format(target),
            (SAMPLE_ROWS,),
        ).fetchall()
    lines = [
        f"files      {', '.join(f'{outcome} {count}' for outcome, count in files)}",
        f"rows       {staged:,} imported by this run; {total:,} in {table}",
        f"rejects    {rejected:,}" + "".join(f"\n  {reason:<20} {count:,}" for reason, count in reasons),
        f"published  by {method or 'nothing'} ({note}); rejected lines in csv_import.rejects"
        f" (run_id = {run_id})",
        f"\n{table}: " + ", ".join(f"{column} {type_}" for column, type_ in columns),
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
