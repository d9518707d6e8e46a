"""``make run``: run the learning platform DAG for one date on this machine, then report.

Starts what the configuration asks for (a local PostgreSQL for the warehouse, the API
simulator, an SMTP sink that keeps every message as an ``.eml`` file), runs
``airflow dags test learning_platform_etl DATE`` against them, prints what landed and where
the report and the email went, and stops everything it started, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg

from devservices.dag_test import LocalAirflow
from devservices.environment import connection_from_env
from devservices.local_services import OUTBOX, start_local_services
from devservices.summary import summarize_interval
from include.common.intervals import Interval, resolve_interval
from include.common.postgres import conninfo_from_connection
from include.learning_platform.rendering import text_table
from include.learning_platform.report_layout import notices, summary_tables
from include.learning_platform.report_reader import load_report
from include.learning_platform.settings import REPORT_VARIABLE, parse_report_settings
from include.learning_platform.texts import ENGLISH
from include.learning_platform.warehouse import warehouse_conn_id

DAG_ID = "learning_platform_etl"

log = logging.getLogger("make run")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    args = _parse_args(argv)
    airflow = LocalAirflow()
    # The DAG's timetable makes the logical date's UTC day the run's data interval; the same
    # function as the tasks' then names the interval to report.
    params = {"test_mode": args.test_mode}
    day = Interval.for_day(args.date)
    interval = resolve_interval(
        data_interval_start=day.start, data_interval_end=day.end, test_mode=params["test_mode"]
    )
    dag_test_log = f"dags-test-{args.date}"

    with ExitStack() as services:
        start_local_services(services)
        mail_before = set(OUTBOX.glob("*.eml"))
        airflow.migrate()
        log.info("running %s for %s (Airflow home %s)", DAG_ID, args.date, airflow.home)
        dag_test = airflow.dags_test(DAG_ID, args.date.isoformat(), params, log_name=dag_test_log)
        summary, report = _published(interval, test_mode=args.test_mode)
    new_mail = sorted(set(OUTBOX.glob("*.eml")) - mail_before)

    if summary is None or not dag_test.succeeded:
        log.error(
            "the run did not complete for %s (airflow exit code %d); see %s",
            interval,
            dag_test.returncode,
            dag_test.log,
        )
        for path in new_mail:
            log.error("mail sent by the run (alerts among them): %s", path)
        return 1
    where = "the test-mode scratch warehouse" if args.test_mode else "the warehouse"
    conn_id = warehouse_conn_id(test_mode=args.test_mode)
    print(f"\n{DAG_ID} {args.date}: published to {where} (connection {conn_id})")
    print("\n".join(summary.lines()))
    if report is not None:
        print()
        for notice in notices(report, ENGLISH):
            print(f"NOTE: {notice}")
        overview, figures = summary_tables(report, ENGLISH)[:2]
        print(text_table(overview, ENGLISH.language))
        print()
        print(text_table(figures, ENGLISH.language))
    for path in _report_files(args.date, test_mode=args.test_mode):
        print(f"report file: {path}")
    for path in new_mail:
        print(f"email: {path}")
    print(f"\nAirflow log of the run: {dag_test.log}")
    return 0


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--date",
        type=date.fromisoformat,
        default=(datetime.now(UTC) - timedelta(days=1)).date(),
        help="UTC day to process, YYYY-MM-DD (default: yesterday)",
    )
    parser.add_argument("--test-mode", action="store_true", help="process only the first hour of the day")
    return parser.parse_args(argv)


def _published(interval: Interval, *, test_mode: bool):
    """What the run left in its warehouse: the load's summary and the day's report, if any."""
    conninfo = conninfo_from_connection(connection_from_env(warehouse_conn_id(test_mode=test_mode)))
    try:
        with psycopg.connect(conninfo, connect_timeout=10) as conn:
            summary = summarize_interval(conn, interval)
            try:
                report = load_report(conn, interval.day)
            except LookupError:
                report = None
            return summary, report
    except psycopg.errors.UndefinedTable:
        return None, None


def _report_files(day: date, *, test_mode: bool) -> list[Path]:
    """The local report files of ``day`` (written when no Google credentials are configured)."""
    settings = parse_report_settings(os.environ.get(f"AIRFLOW_VAR_{REPORT_VARIABLE.upper()}"))
    settings = settings.for_test_mode() if test_mode else settings
    return sorted(settings.report_directory.glob(f"learning_platform_{day.isoformat()}.*"))


if __name__ == "__main__":
    sys.exit(main())
