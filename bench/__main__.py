"""``python -m bench``: measure the pipeline on a simulated day and compare it with the alternatives.

Prints a table and, as its last line, one JSON object with the headline figures; writes every
figure to ``<state dir>/results.json``. Progress goes to stderr. The PostgreSQL cluster it starts
under the state directory is destroyed at the end, and the local Airflow that times Airflow's own
per-task start-up (``bench.airflow_overhead``) stopped, also on failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

import psycopg

from bench import airflow_overhead, baselines, report
from bench import retention as landing_retention
from bench.services import interrupt_on_sigterm, local_postgres, simulator_process
from bench.stages import DayRun, StageRun, new_job, prepare_warehouse, run_day, run_stage
from devservices.environment import PROJECT_ROOT
from devservices.postgres import LocalPostgres
from devservices.simulator.process import SimulatorProcess
from include.common.intervals import Interval

log = logging.getLogger("bench")

DAY = date(2026, 3, 2)  # any day: the simulator serves the same volume every day
DEFAULT_STATE_DIR = PROJECT_ROOT / ".local" / "bench"
DOCS = PROJECT_ROOT / "docs"


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    args = _parse_args(argv)
    interrupt_on_sigterm()
    state_dir: Path = args.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    interval = Interval.for_day(DAY)

    with (
        local_postgres(state_dir) as server,
        simulator_process(args.records, state_dir / "simulator.log") as simulator,
    ):
        day = _measure_day(server, simulator, "bench", args.records)
        serving = _measure_simulator_alone(server, simulator)
        csv_path = state_dir / "attempts.csv"
        try:
            measured = _baselines(server, "bench", interval, csv_path, args)
        finally:
            csv_path.unlink(missing_ok=True)
        scaling = _scaling(server, simulator, day, args) if args.scaling else []
        retention = (
            _retention(server, simulator)
            if args.retention
            else landing_retention.not_measured("off (--no-retention, or --quick)")
        )
        # Last: its components must not compete with the measured stages for the cores.
        airflow = (
            airflow_overhead.measure(server, simulator, state_dir, DAY)
            if args.airflow_startup
            else airflow_overhead.not_measured("off (--no-airflow-startup, or --quick)")
        )
        with psycopg.connect(server.conninfo()) as conn:
            (postgres_version,) = conn.execute("SHOW server_version").fetchone()

    results = _results(day, serving, measured, scaling, airflow, postgres_version)
    results["retention"] = retention
    print(report.text_tables(results))
    (state_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    if args.write_docs:
        report.write_docs(results, DOCS / "PERFORMANCE.md", DOCS / "performance.png")
        log.info("wrote %s and %s", DOCS / "PERFORMANCE.md", DOCS / "performance.png")
    print(json.dumps(report.summary(results)))
    return 0


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100,000 attempts, no scaling, row sample 1,000")
    parser.add_argument("--records", type=int, help="attempts in the simulated day (default 1,000,000)")
    parser.add_argument("--row-sample", type=int, help="rows timed row by row (default 5,000; quick 1,000)")
    parser.add_argument(
        "--pandas-sample", type=int, help="rows timed with DataFrame.to_sql (default 200,000; quick 20,000)"
    )
    parser.add_argument(
        "--scaling",
        action=argparse.BooleanOptionalAction,
        help="also run the day at each --scaling-sizes (default: on, off with --quick)",
    )
    parser.add_argument(
        "--scaling-sizes",
        type=_sizes,
        default=(10_000, 100_000, 1_000_000),
        help="comma-separated day sizes of the scaling run (default 10000,100000,1000000)",
    )
    parser.add_argument(
        "--retention",
        action=argparse.BooleanOptionalAction,
        help="also measure landing retention: 30 days of 100,000 attempts with and without it, and a day "
        "dropped against deleted (default: on, off with --quick; alone: python -m bench.retention)",
    )
    parser.add_argument(
        "--airflow-startup",
        action=argparse.BooleanOptionalAction,
        help="also measure Airflow's own per-task start-up: the DAG on a tiny day in a local Airflow "
        "(default: on, off with --quick)",
    )
    parser.add_argument(
        "--write-docs", action="store_true", help="write docs/PERFORMANCE.md and docs/performance.png"
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="cluster, logs and results.json (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    args.records = args.records or (100_000 if quick else 1_000_000)
    args.row_sample = args.row_sample or (1_000 if quick else 5_000)
    args.pandas_sample = args.pandas_sample or (20_000 if quick else 200_000)
    args.scaling = (not quick) if args.scaling is None else args.scaling
    args.retention = (not quick) if args.retention is None else args.retention
    args.airflow_startup = (not quick) if args.airflow_startup is None else args.airflow_startup
    if args.write_docs and quick:
        parser.error("--write-docs needs a full run: drop --quick")
    return args


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(sorted(int(part) for part in text.split(",") if part.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _measure_day(server: LocalPostgres, simulator: SimulatorProcess, dbname: str, records: int) -> DayRun:
    server.create_database(dbname)
    conninfo = server.conninfo(dbname)
    prepare_warehouse(conninfo)
    simulator.set_records_per_day(records)
    log.info("day of %d attempts: running extract, validate, load, compute_stats", records)
    job = new_job(conninfo, simulator.base_url, simulator.client, simulator.client_key, DAY)
    day = run_day(job, records)
    for stage in day.stages:
        log.info(
            "  %-13s %9d records %8.2f s  %6.0f MB",
            stage.name,
            stage.records,
            stage.wall_s,
            stage.peak_rss_mb,
        )
    return day


def _measure_simulator_alone(server: LocalPostgres, simulator: SimulatorProcess) -> StageRun:
    """The simulator serving the same day with nothing done to its answer (extract's floor)."""
    job = new_job(server.conninfo("bench"), simulator.base_url, simulator.client, simulator.client_key, DAY)
    serving = run_stage("simulator_alone", job)
    log.info("  the simulator alone served the day in %.2f s", serving.wall_s)
    return serving


def _baselines(
    server: LocalPostgres, dbname: str, interval: Interval, csv_path: Path, args: argparse.Namespace
) -> list[baselines.Baseline]:
    conninfo = server.conninfo(dbname)
    rows = baselines.export_day(conninfo, interval, csv_path)
    log.info("exported %d valid rows to %s; loading them the other ways", rows, csv_path)
    measured = [baselines.psql_copy(server, dbname, csv_path, rows)]
    measured.append(baselines.row_by_row(conninfo, interval, rows, args.row_sample))
    measured.append(baselines.pandas_to_sql(server.url(dbname), conninfo, interval, rows, args.pandas_sample))
    for baseline in measured:
        log.info("  %-28s %s", baseline.name, baseline.note)
    return measured


def _scaling(
    server: LocalPostgres, simulator: SimulatorProcess, main_day: DayRun, args: argparse.Namespace
) -> list[DayRun]:
    days = []
    for size in args.scaling_sizes:
        if size == main_day.attempts:
            days.append(main_day)
        else:
            days.append(_measure_day(server, simulator, f"bench_{size}", size))
    return days


def _retention(server: LocalPostgres, simulator: SimulatorProcess) -> dict[str, Any]:
    """Retention's figures, or why there are none: a failure must not cost the figures measured."""
    try:
        return landing_retention.measure(server, simulator)
    except Exception as error:
        log.warning("landing retention not measured: %s", error)
        return landing_retention.not_measured(f"{type(error).__name__}: {error}")


def _results(
    day: DayRun,
    serving: StageRun,
    measured: list[baselines.Baseline],
    scaling: list[DayRun],
    airflow: dict[str, Any],
    postgres_version: str,
) -> dict[str, Any]:
    by_key = {baseline.name: baseline for baseline in measured}
    psql = by_key["psql \\copy"]
    row_by_row = by_key["row-by-row INSERT + COMMIT"]
    load = day.stage("load")

    def ratio(numerator: float, denominator: float, valid: bool) -> float | None:
        return round(numerator / denominator, 3) if valid and denominator > 0 else None

    results: dict[str, Any] = {
        "records": day.attempts,
        "valid_rows": load.records,
        "stages": _stages(day),
        "end_to_end_s": round(day.end_to_end_s, 3),
        "peak_rss_mb": round(day.peak_rss_mb, 1),
        "load_rows_per_s": round(load.rows_per_s, 1),
        "psql_copy_s": round(psql.seconds, 3) if not psql.skipped else None,
        "load_vs_psql_copy": ratio(load.rows_per_s, psql.rows_per_s, not psql.skipped),
        "load_vs_row_by_row": ratio(load.rows_per_s, row_by_row.rows_per_s, not row_by_row.skipped),
        "end_to_end_vs_psql_copy": ratio(day.end_to_end_s, psql.seconds, not psql.skipped),
        "simulator_alone_s": round(serving.wall_s, 3),
        "simulator_alone": {
            "wall_s": round(serving.wall_s, 3),
            "client_cpu_s": round(serving.cpu_s, 3),
            "bytes": serving.detail["bytes"],
        },
        "baselines": {
            baseline.name: {
                **asdict(baseline),
                "seconds": round(baseline.seconds, 3),
                "rows_per_s": round(baseline.rows_per_s, 1),
                "note": baseline.note,
            }
            for baseline in measured
        },
        "scaling": [
            {
                "attempts": point.attempts,
                "end_to_end_s": round(point.end_to_end_s, 3),
                "peak_rss_mb": round(point.peak_rss_mb, 1),
                "stages": _stages(point),
            }
            for point in scaling
        ],
        "airflow_task_overhead": airflow,
        "airflow_overhead_per_task_s": airflow.get("per_task_s"),
        "machine": {**report.machine(), "postgres": postgres_version},
    }
    results["targets"] = report.targets(results)
    return results


def _stages(day: DayRun) -> dict[str, dict[str, Any]]:
    return {
        stage.name: {
            "records": stage.records,
            "wall_s": round(stage.wall_s, 3),
            "rows_per_s": round(stage.rows_per_s, 1),
            "cpu_s": round(stage.cpu_s, 3),
            "peak_rss_mb": round(stage.peak_rss_mb, 1),
            "process_s": round(stage.process_s, 3),
            "detail": stage.detail,
        }
        for stage in day.stages
    }


if __name__ == "__main__":
    sys.exit(main())
