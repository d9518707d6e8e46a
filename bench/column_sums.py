"""``python -m bench.column_sums``: summing every 10th column of a CSV, ours against the engines.

    python -m bench.column_sums [--rows 300000,3000000] [--columns 30] [--repeat 3] [--quick]
                                [--state-dir DIR]

For each size a file is written by ``devservices.csv_columns`` (kept in the state folder for the
next run) and summed by each lane in a fresh process, after the file is read once so that every
lane finds it in the page cache:

- ``ours``: :func:`include.column_sums.sums.sum_columns` on the open file (the task's compute),
  in one process; ``ours_processes`` with a worker process per core (their start-up included).
- ``duckdb``: DuckDB on every core, the same sums as ``TRY_CAST(trim(cell) AS DECIMAL(38, 6))``
  (exact here because the generator writes at most 6 fraction digits; DuckDB needs that scale
  chosen in advance), the same counts, no row numbers.
- ``pandas``: ``read_csv`` of the summed columns and ``to_numeric(errors="coerce").sum()``, what
  most users write: float sums, so its drift from the exact sum is shown.

Each lane reports wall seconds, CPU seconds (its worker processes' included), MB/s (the file's
size over the wall time) and peak RSS (for ``ours_processes``, its own plus the largest worker's times the
number of workers: an upper bound), from the median of ``--repeat`` runs (lanes take turns, so
that a busy moment hits them all), and whether its sums and counts equal the generator's. Then
the ratios, the targets of issue 15 (compute ≤ 1.5× the fastest engine, peak RSS < 300 MB and
flat from the smallest to the largest file) and, as the last line, one JSON object with every
figure (also ``<state dir>/results.json``). Polars and PyArrow are not installed, so not
measured. Timing on a busy machine is noisy: compare CPU seconds too, and quote a run on a
machine left alone.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import time
from dataclasses import asdict
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench.services import in_fresh_process, lane_outcome
from devservices.csv_columns import ExpectedColumn, Written, write_csv
from devservices.environment import PROJECT_ROOT

log = logging.getLogger("bench")

DEFAULT_STATE_DIR = PROJECT_ROOT / ".local" / "bench" / "column_sums"
LANES = ("ours", "ours_processes", "duckdb", "pandas")
ENGINES = ("duckdb",)  # the fastest of these is the target's yardstick
RSS_LIMIT_MB = 300
SPEED_TARGET = 1.5
FLAT_TARGET = 1.2
PAGE_CACHE_BLOCK = 64 << 20


def ours(written: Written, processes: int = 1) -> dict[str, Any]:
    from include.column_sums.sums import sum_columns

    with open(written.path, "rb", buffering=0) as stream:
        result = sum_columns(stream, processes=processes)
    return {
        column.name: {
            "sum": str(column.sum),
            "numeric": column.numeric,
            "blank": column.blank,
            "non_numeric": column.non_numeric,
        }
        for column in result.columns
    }


def duckdb_lane(written: Written) -> dict[str, Any]:
    import duckdb  # a development dependency only this lane needs

    names = [column.name for column in written.expected]
    # Typed as VARCHAR: otherwise DuckDB pushes the cast into its reader, which then fails on junk.
    types = ", ".join(f"'{name}': 'VARCHAR'" for name in names)
    figures = ", ".join(
        f"sum(TRY_CAST(trim({name}) AS DECIMAL(38, 6))), count(TRY_CAST(trim({name}) AS DECIMAL(38, 6))), "
        f"count(*) FILTER (WHERE trim({name}) = '' OR {name} IS NULL), count(*)"
        for name in names
    )
    query = f"SELECT {figures} FROM read_csv($path, header = true, types = {{{types}}})"  # noqa: S608
    with duckdb.connect(config={"threads": os.cpu_count() or 1}) as db:
        row = db.execute(query, {"path": written.path}).fetchone()
    out = {}
    for index, name in enumerate(names):
        total, numeric, blank, rows = row[4 * index : 4 * index + 4]
        out[name] = {
            "sum": str(total),
            "numeric": numeric,
            "blank": blank,
            "non_numeric": rows - numeric - blank,
        }
    return out


def pandas_lane(written: Written) -> dict[str, Any]:
    import pandas as pd

    names = [column.name for column in written.expected]
    frame = pd.read_csv(written.path, usecols=names, dtype=str, keep_default_na=False)
    out = {}
    for name in names:
        cells = frame[name].str.strip()
        numbers = pd.to_numeric(cells, errors="coerce")
        blank = int((cells == "").sum())
        out[name] = {
            "sum": repr(float(numbers.sum())),
            "numeric": int(numbers.notna().sum()),
            "blank": blank,
            "non_numeric": int(numbers.isna().sum()) - blank,
        }
    return out


_LANES = {
    "ours": ours,
    "ours_processes": lambda written: ours(written, processes=os.cpu_count() or 1),
    "duckdb": duckdb_lane,
    "pandas": pandas_lane,
}
_IMPORTS = {
    "ours": ("include.column_sums.sums",),
    "ours_processes": ("include.column_sums.sums",),
    "duckdb": ("duckdb",),
    "pandas": ("pandas",),
}


def _lane_process(name: str, written: Written, sender: Connection) -> None:
    # Imported before the clock starts: a worker has them loaded already.
    for module in _IMPORTS[name]:
        importlib.import_module(module)
    sender.send(lane_outcome(lambda: _LANES[name](written)))
    sender.close()


def run_lane(name: str, written: Written) -> dict[str, Any]:
    with open(written.path, "rb", buffering=0) as source:
        while source.read(PAGE_CACHE_BLOCK):
            pass
    outcome, exitcode = in_fresh_process(_lane_process, name, written, process_name=name)
    if "result" not in outcome:
        raise RuntimeError(f"lane {name!r} failed (exit code {exitcode}): {outcome.get('error')}")
    found = outcome["result"]
    return {
        "name": name,
        "wall_s": round(outcome["wall_s"], 3),
        "cpu_s": round(outcome["cpu_s"] + outcome["children_cpu_s"], 3),  # worker processes' too
        "mb_per_s": round(written.bytes / 1e6 / outcome["wall_s"], 1),
        # This process's peak plus, for each worker process, the largest one's: an upper bound.
        "peak_rss_mb": round(outcome["peak_rss_mb"] + _workers(name) * outcome["children_peak_rss_mb"], 1),
        "exact": all(_matches(found[column.name], column) for column in written.expected),
        "counts_right": all(_counts_match(found[column.name], column) for column in written.expected),
        "drift": max(
            abs(Decimal(found[column.name]["sum"]) - Decimal(column.sum)) for column in written.expected
        ),
    }


def _workers(lane: str) -> int:
    return (os.cpu_count() or 1) if lane == "ours_processes" else 0


def _matches(found: dict[str, Any], expected: ExpectedColumn) -> bool:
    return Decimal(found["sum"]) == Decimal(expected.sum) and _counts_match(found, expected)


def _counts_match(found: dict[str, Any], expected: ExpectedColumn) -> bool:
    return (found["numeric"], found["blank"], found["non_numeric"]) == (
        expected.numeric,
        expected.blank,
        expected.non_numeric,
    )


def written_file(state_dir: Path, rows: int, columns: int) -> Written:
    """The file of ``rows`` × ``columns``, written once and kept with its expected sums."""
    path = state_dir / f"columns-{rows}x{columns}.csv"
    manifest = path.with_suffix(".json")
    if path.exists() and manifest.exists():
        saved = json.loads(manifest.read_text())
        saved["expected"] = tuple(ExpectedColumn(**column) for column in saved["expected"])
        written = Written(**saved)
        if written.bytes == path.stat().st_size:
            return written
    log.info("writing %s", path)
    written = write_csv(path, rows=rows, columns=columns)
    manifest.write_text(json.dumps(asdict(written), indent=2) + "\n")
    return written


def measure(state_dir: Path, sizes: list[int], columns: int, repeat: int) -> dict[str, Any]:
    points = []
    for rows in sizes:
        written = written_file(state_dir, rows, columns)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in LANES}
        for round_ in range(repeat):  # lanes take turns, so that a busy moment hits them all
            for name in LANES:
                log.info("%s on %s rows (run %d of %d)", name, f"{rows:,}", round_ + 1, repeat)
                runs[name].append(run_lane(name, written))
        lanes = {name: _median(lane_runs) for name, lane_runs in runs.items()}
        points.append(
            {"rows": rows, "columns": columns, "bytes": written.bytes, "repeat": repeat, "lanes": lanes}
        )
    return {"points": points, "targets": targets(points), "cpus": os.cpu_count()}


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median wall time, and the range of the wall times."""
    ordered = sorted(runs, key=lambda run: run["wall_s"])
    return {**ordered[len(ordered) // 2], "wall_s_range": [ordered[0]["wall_s"], ordered[-1]["wall_s"]]}


def targets(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    largest = points[-1]["lanes"]
    fastest = min(ENGINES, key=lambda name: largest[name]["wall_s"])
    ratio = largest["ours"]["wall_s"] / largest[fastest]["wall_s"]
    out.append(
        _target(
            f"compute <= {SPEED_TARGET}x the fastest engine ({fastest})",
            f"{ratio:.2f}x wall ({largest['ours']['cpu_s'] / largest[fastest]['cpu_s']:.2f}x CPU)",
            ratio <= SPEED_TARGET,
        )
    )
    worst = max(point["lanes"]["ours"]["peak_rss_mb"] for point in points)
    out.append(_target(f"peak RSS < {RSS_LIMIT_MB} MB", f"{worst:.0f} MB", worst < RSS_LIMIT_MB))
    if len(points) > 1:
        growth = largest["ours"]["peak_rss_mb"] / points[0]["lanes"]["ours"]["peak_rss_mb"]
        out.append(
            _target(
                f"peak RSS flat: largest <= {FLAT_TARGET}x smallest", f"{growth:.2f}x", growth <= FLAT_TARGET
            )
        )
    exact = all(point["lanes"]["ours"]["exact"] for point in points)
    out.append(_target("ours: sums and counts equal the generator's", "yes" if exact else "NO", exact))
    return out


def _target(target: str, measured: str, met: bool) -> dict[str, Any]:
    return {"target": target, "measured": measured, "met": met}


def text(results: dict[str, Any]) -> str:
    lines = []
    for point in results["points"]:
        lanes = point["lanes"]
        lines.append(
            f"{point['rows']:,} rows x {point['columns']} columns, {point['bytes'] / 1e6:.0f} MB "
            f"(median of {point['repeat']} runs)"
        )
        lines.append(
            f"  {'lane':14} {'wall s':>8} {'cpu s':>8} {'MB/s':>8} {'peak RSS MB':>12}  exact  vs ours"
        )
        for lane in lanes.values():
            ratio = lane["wall_s"] / lanes["ours"]["wall_s"]
            exact = "yes" if lane["exact"] else f"no (drift {lane['drift']:.3g})"
            lines.append(
                f"  {lane['name']:14} {lane['wall_s']:8.2f} {lane['cpu_s']:8.2f} {lane['mb_per_s']:8.1f} "
                f"{lane['peak_rss_mb']:12.0f}  {exact:5}  {ratio:.2f}x"
            )
    lines.append("targets:")
    for target in results["targets"]:
        lines.append(f"  [{'met' if target['met'] else 'MISSED'}] {target['target']}: {target['measured']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="python -m bench.column_sums", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="300000,3000000", help="comma-separated file sizes in rows")
    parser.add_argument("--columns", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="one file of 20,000 rows: a smoke test")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each lane; the median is reported")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    args = parser.parse_args(argv)
    sizes = [20_000] if args.quick else [int(rows) for rows in args.rows.split(",")]
    repeat = 1 if args.quick else args.repeat
    state_dir: Path = args.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = measure(state_dir, sizes, args.columns, repeat)
    results["seconds"] = round(time.perf_counter() - started, 1)
    (state_dir / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(text(results))
    print(json.dumps(results, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
