"""``python -m bench.column_sums``: summing every 10th column of a CSV, ours against the engines.

    python -m bench.column_sums [--rows 300000,3000000] [--columns 30] [--repeat 3] [--quick]
                                [--state-dir DIR] [--write-docs | --rewrite-docs]

For each size a file is written by ``devservices.csv_columns`` (kept in the state folder for the
next run), uploaded to a local S3 server (moto, in a thread of this process: ``LocalS3``), and
summed by each lane in a fresh process. Lanes come in groups, each a key of the results:

``disk``, the file read from the local disk, read once beforehand so that every lane finds it in
the page cache:

- ``ours``: :func:`include.column_sums.sums.sum_columns` on the open file (the task's compute),
  in one process; ``ours_processes`` with a worker process per core (their start-up included).
- ``duckdb``: DuckDB on every core, the same sums as ``TRY_CAST(trim(cell) AS DECIMAL(38, 6))``
  (exact here because the generator writes at most 6 fraction digits; DuckDB needs that scale
  chosen in advance), the same counts, no row numbers.
- ``polars``: ``scan_csv`` with every column read as text, ``str.strip_chars()`` and
  ``cast(Decimal(38, 6), strict=False)`` (a cell that is no decimal becomes null), collected by
  its streaming engine on every core: exact Decimal sums, the same counts, no row numbers.
- ``pyarrow``: ``pyarrow.csv.open_csv`` (its streaming reader, the summed columns as strings),
  ``utf8_trim_whitespace`` and ``cast`` to ``decimal128(38, 6)``. Arrow has no try-cast (a cast
  fails the whole batch on one bad cell, ``safe=False`` or not), so a cell is cast only if it
  matches a plain decimal (``[+-]?(\\d+\\.?\\d*|\\.\\d+)``): exact, the same counts for these files
  (the generator writes no exponents; ours would also count ``1.5e3`` as a number).
- ``pandas``: ``read_csv`` of the summed columns and ``to_numeric(errors="coerce").sum()``, what
  most users write: float sums, so its drift from the exact sum is shown.

``s3``, the same bytes from the local S3 server over HTTP:

- ``ours``: :func:`include.column_sums.storage.open_source` on ``s3://bucket/key`` through the
  Amazon provider's hook and an Airflow connection (``AIRFLOW_CONN_<ID>``, set in the lane's
  process), the resumable stream the task reads, then ``sum_columns``.
- ``polars``: ``scan_csv("s3://…", storage_options=…)`` pointed at the endpoint, the same sums.
- ``pyarrow``: ``S3FileSystem(endpoint_override=…, scheme="http")`` and its input stream (read
  through a 64 MiB buffer, so a dozen ranged GETs for 719 MB, not 180) into the same streaming
  reader. DuckDB is not among them: it reads S3 only through its ``httpfs``
  extension, a download this offline machine does not make.
- ``pandas``: ``read_csv("s3://…", storage_options=…)`` through s3fs, as above.

The S3 server shares the machine's cores with the lane it serves, so the ``s3`` figures are those
of this set-up, not of AWS: a lane's CPU seconds are its own, the server's come on top.

Each lane reports wall seconds, CPU seconds (its worker processes' included), MB/s (the file's
size over the wall time) and peak RSS (for ``ours_processes``, its own plus the largest worker's
times the number of workers: an upper bound), from the median of ``--repeat`` runs (lanes take
turns, so that a busy moment hits them all), and whether its sums and counts equal the
generator's. Then the ratios, the targets of issue 15 (compute ≤ 1.5× the fastest engine, peak
RSS < 300 MB and flat from the smallest to the largest file) and, as the last line, one JSON
object with every figure (also ``<state dir>/results.json``). ``--write-docs`` rewrites the
``csv_column_sums`` part of docs/PERFORMANCE.md and its chart, nothing else; ``--rewrite-docs``
does so from the last results.json. Timing on a busy machine is noisy: compare CPU seconds too.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench import report
from bench.services import in_fresh_process, lane_outcome
from devservices.csv_columns import ExpectedColumn, Written, write_csv
from devservices.environment import PROJECT_ROOT

log = logging.getLogger("bench")

DEFAULT_STATE_DIR = PROJECT_ROOT / ".local" / "bench" / "column_sums"
DOCS = PROJECT_ROOT / "docs"
CHART = "performance_column_sums.png"
SECTION_TITLE = "# Performance of csv_column_sums"
# Each group is a key of the results: a list of points, one per size, each with its lanes.
GROUPS = {
    "disk": ("ours", "ours_processes", "duckdb", "polars", "pyarrow", "pandas"),
    "s3": ("ours", "polars", "pyarrow", "pandas"),
}
GROUP_TITLES = {"disk": "From the local disk (page cache)", "s3": "From the local S3 server (moto)"}
ENGINES = ("duckdb", "polars", "pyarrow")  # the fastest of these is the target's yardstick
RSS_LIMIT_MB = 300
SPEED_TARGET = 1.5
FLAT_TARGET = 1.2
PAGE_CACHE_BLOCK = 64 << 20
QUICK_ROWS = 20_000
S3_CONN_ID = "bench_column_sums_s3"
S3_BUCKET = "bench-column-sums"
S3_READ_BUFFER = 64 << 20  # PyArrow's requests to S3
# A plain decimal, the only text Arrow's cast to decimal takes without failing the whole batch.
PLAIN_DECIMAL = r"^[+-]?(\d+\.?\d*|\.\d+)$"


@dataclass(frozen=True)
class S3Copy:
    """The file's copy on the local S3 server, and what a lane needs to reach it."""

    bucket: str
    key: str
    endpoint_url: str
    access_key: str
    secret_key: str
    region: str
    environment: dict[str, str]  # AIRFLOW_CONN_<S3_CONN_ID>, for ours

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


Sums = dict[str, dict[str, Any]]  # column name -> {"sum", "numeric", "blank", "non_numeric"}


# --- the lanes ------------------------------------------------------------------------------------


def ours(written: Written, processes: int = 1) -> Sums:
    from include.column_sums.sums import sum_columns

    with open(written.path, "rb", buffering=0) as stream:
        return _our_sums(sum_columns(stream, processes=processes))


def ours_s3(s3: S3Copy) -> Sums:
    from include.column_sums.storage import open_source
    from include.column_sums.sums import sum_columns

    with open_source(s3.url, local_root=None, aws_conn_id=S3_CONN_ID) as source:
        return _our_sums(sum_columns(source.stream))


def _our_sums(result: Any) -> Sums:
    return {
        column.name: {
            "sum": str(column.sum),
            "numeric": column.numeric,
            "blank": column.blank,
            "non_numeric": column.non_numeric,
        }
        for column in result.columns
    }


def duckdb_lane(written: Written) -> Sums:
    import duckdb  # a development dependency only this lane needs

    names = _names(written)
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
    return _from_totals(names, [row[4 * index : 4 * index + 4] for index in range(len(names))])


def polars_lane(written: Written, s3: S3Copy | None = None) -> Sums:
    import polars as pl

    names = _names(written)
    figures = []
    for name in names:
        cell = pl.col(name).str.strip_chars()
        number = cell.cast(pl.Decimal(38, 6), strict=False)  # not a decimal: null
        figures += [
            number.sum().alias(f"{name}.sum"),
            number.count().alias(f"{name}.numeric"),
            (cell.is_null() | (cell == "")).sum().alias(f"{name}.blank"),
            pl.len().alias(f"{name}.rows"),
        ]
    source, options = (written.path, None) if s3 is None else (s3.url, _polars_options(s3))
    # Every column as text: inferring types would read junk as a reason to fail or to guess.
    frame = pl.scan_csv(source, infer_schema=False, storage_options=options).select(figures)
    row = frame.collect(engine="streaming").row(0)
    return _from_totals(names, [row[4 * index : 4 * index + 4] for index in range(len(names))])


def _polars_options(s3: S3Copy) -> dict[str, str]:
    return {
        "aws_endpoint_url": s3.endpoint_url,
        "aws_access_key_id": s3.access_key,
        "aws_secret_access_key": s3.secret_key,
        "aws_region": s3.region,
        "aws_allow_http": "true",
    }


def pyarrow_lane(written: Written, s3: S3Copy | None = None) -> Sums:
    from pyarrow import fs

    if s3 is None:
        return _pyarrow_sums(written, written.path)
    storage = fs.S3FileSystem(
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        region=s3.region,
        endpoint_override=s3.endpoint_url,
        scheme="http",
    )
    # Unbuffered, each 4 MiB read of the reader is a ranged GET: 180 of them for the 719 MB file,
    # which took this server 145 s (4.9 MB/s). Buffered, a dozen.
    with storage.open_input_stream(f"{s3.bucket}/{s3.key}", buffer_size=S3_READ_BUFFER) as stream:
        return _pyarrow_sums(written, stream)


def _pyarrow_sums(written: Written, source: Any) -> Sums:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as csv

    names = _names(written)
    reader = csv.open_csv(
        source,
        read_options=csv.ReadOptions(block_size=4 << 20),
        parse_options=csv.ParseOptions(newlines_in_values=True),
        convert_options=csv.ConvertOptions(
            include_columns=names,
            column_types=dict.fromkeys(names, pa.string()),
            strings_can_be_null=False,
        ),
    )
    totals = {name: [Decimal(0), 0, 0, 0] for name in names}
    for batch in reader:
        for name in names:
            cell = pc.utf8_trim_whitespace(batch.column(name))
            plain = pc.match_substring_regex(cell, PLAIN_DECIMAL)
            number = pc.cast(pc.if_else(plain, cell, None), pa.decimal128(38, 6))
            figures = totals[name]
            figures[0] += pc.sum(number).as_py() or 0
            figures[1] += pc.count(number).as_py()
            figures[2] += pc.sum(pc.equal(cell, "")).as_py() or 0
            figures[3] += len(cell)
    return _from_totals(names, [totals[name] for name in names])


def _from_totals(names: list[str], totals: list[Any]) -> Sums:
    """Sums from each column's (sum, numeric, blank, rows), as the engines count."""
    return {
        name: {"sum": str(total), "numeric": numeric, "blank": blank, "non_numeric": rows - numeric - blank}
        for name, (total, numeric, blank, rows) in zip(names, totals, strict=True)
    }


def pandas_lane(written: Written, s3: S3Copy | None = None) -> Sums:
    import pandas as pd

    names = _names(written)
    source, options = (written.path, None) if s3 is None else (s3.url, _s3fs_options(s3))
    frame = pd.read_csv(source, usecols=names, dtype=str, keep_default_na=False, storage_options=options)
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


def _s3fs_options(s3: S3Copy) -> dict[str, Any]:
    return {
        "key": s3.access_key,
        "secret": s3.secret_key,
        "client_kwargs": {"endpoint_url": s3.endpoint_url, "region_name": s3.region},
    }


def _names(written: Written) -> list[str]:
    return [column.name for column in written.expected]


@dataclass(frozen=True)
class Lane:
    run: Callable[[Written, S3Copy | None], Sums]
    imports: tuple[str, ...]  # loaded before the clock starts: a worker has them loaded already
    workers: int = 0  # worker processes, each counted at the largest one's peak RSS


LANES: dict[tuple[str, str], Lane] = {
    ("disk", "ours"): Lane(lambda written, _: ours(written), ("include.column_sums.sums",)),
    ("disk", "ours_processes"): Lane(
        lambda written, _: ours(written, processes=os.cpu_count() or 1),
        ("include.column_sums.sums",),
        workers=os.cpu_count() or 1,
    ),
    ("disk", "duckdb"): Lane(lambda written, _: duckdb_lane(written), ("duckdb",)),
    ("disk", "polars"): Lane(lambda written, _: polars_lane(written), ("polars",)),
    ("disk", "pyarrow"): Lane(lambda written, _: pyarrow_lane(written), ("pyarrow.csv", "pyarrow.compute")),
    ("disk", "pandas"): Lane(lambda written, _: pandas_lane(written), ("pandas",)),
    ("s3", "ours"): Lane(
        lambda _, s3: ours_s3(s3),
        ("include.column_sums.storage", "include.column_sums.sums", "airflow.providers.amazon.aws.hooks.s3"),
    ),
    ("s3", "polars"): Lane(polars_lane, ("polars",)),
    ("s3", "pyarrow"): Lane(pyarrow_lane, ("pyarrow.csv", "pyarrow.compute", "pyarrow.fs")),
    ("s3", "pandas"): Lane(pandas_lane, ("pandas", "s3fs")),
}


def _lane_process(group: str, name: str, written: Written, s3: S3Copy | None, sender: Connection) -> None:
    lane = LANES[group, name]
    if s3 is not None:
        os.environ.update(s3.environment)  # as a worker has its connections configured
    for module in lane.imports:
        importlib.import_module(module)
    sender.send(lane_outcome(lambda: lane.run(written, s3)))
    sender.close()


def run_lane(group: str, name: str, written: Written, s3: S3Copy | None) -> dict[str, Any]:
    if s3 is None:
        with open(written.path, "rb", buffering=0) as source:
            while source.read(PAGE_CACHE_BLOCK):
                pass
    outcome, exitcode = in_fresh_process(_lane_process, group, name, written, s3, process_name=name)
    if "result" not in outcome:
        raise RuntimeError(f"lane {group}/{name} failed (exit code {exitcode}): {outcome.get('error')}")
    found = outcome["result"]
    return {
        "name": name,
        "wall_s": round(outcome["wall_s"], 3),
        "cpu_s": round(outcome["cpu_s"] + outcome["children_cpu_s"], 3),  # worker processes' too
        "mb_per_s": round(written.bytes / 1e6 / outcome["wall_s"], 1),
        # This process's peak plus, for each worker process, the largest one's: an upper bound.
        "peak_rss_mb": round(
            outcome["peak_rss_mb"] + LANES[group, name].workers * outcome["children_peak_rss_mb"], 1
        ),
        "exact": all(_matches(found[column.name], column) for column in written.expected),
        "counts_right": all(_counts_match(found[column.name], column) for column in written.expected),
        "drift": str(
            max(abs(Decimal(found[column.name]["sum"]) - Decimal(column.sum)) for column in written.expected)
        ),
    }


def _matches(found: dict[str, Any], expected: ExpectedColumn) -> bool:
    return Decimal(found["sum"]) == Decimal(expected.sum) and _counts_match(found, expected)


def _counts_match(found: dict[str, Any], expected: ExpectedColumn) -> bool:
    return (found["numeric"], found["blank"], found["non_numeric"]) == (
        expected.numeric,
        expected.blank,
        expected.non_numeric,
    )


# --- measuring ------------------------------------------------------------------------------------


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


@contextmanager
def local_s3() -> Iterator[Any]:
    """moto's S3 server in a thread of this process, with the bench's bucket."""
    from devservices.s3_server import LocalS3, create_bucket

    with LocalS3() as server:
        os.environ.update(server.environment(S3_CONN_ID))  # for the upload, through the hook
        create_bucket(S3_CONN_ID, S3_BUCKET)
        yield server


def upload(server: Any, written: Written) -> S3Copy:
    from devservices.s3_server import DUMMY_KEY_PAIR, REGION, s3_hook

    key = Path(written.path).name
    log.info("uploading %s to s3://%s/%s", Path(written.path).name, S3_BUCKET, key)
    s3_hook(S3_CONN_ID).load_file(written.path, key=key, bucket_name=S3_BUCKET, replace=True)
    return S3Copy(
        bucket=S3_BUCKET,
        key=key,
        endpoint_url=server.endpoint_url,
        access_key=DUMMY_KEY_PAIR[0],
        secret_key=DUMMY_KEY_PAIR[1],
        region=REGION,
        environment=server.environment(S3_CONN_ID),
    )


def measure(state_dir: Path, sizes: list[int], columns: int, repeat: int) -> dict[str, Any]:
    results: dict[str, Any] = {group: [] for group in GROUPS}
    load = [os.getloadavg()[0]]
    with local_s3() as server:
        for rows in sizes:
            written = written_file(state_dir, rows, columns)
            s3 = upload(server, written)
            runs: dict[tuple[str, str], list[dict[str, Any]]] = {
                (group, name): [] for group, names in GROUPS.items() for name in names
            }
            for round_ in range(repeat):  # lanes take turns, so that a busy moment hits them all
                for group, name in runs:
                    log.info("%s/%s on %s rows (run %d of %d)", group, name, f"{rows:,}", round_ + 1, repeat)
                    runs[group, name].append(run_lane(group, name, written, s3 if group == "s3" else None))
            for group, names in GROUPS.items():
                lanes = {name: report.median_run(runs[group, name], "wall_s") for name in names}
                results[group].append(
                    {
                        "rows": rows,
                        "columns": columns,
                        "bytes": written.bytes,
                        "repeat": repeat,
                        "lanes": lanes,
                    }
                )
    load.append(os.getloadavg()[0])
    results["targets"] = targets(results)
    results["machine"] = {**report.machine(), "load_average_1min": load}
    return results


def fastest_engine(lanes: dict[str, Any]) -> str:
    return min((name for name in lanes if name in ENGINES), key=lambda name: lanes[name]["wall_s"])


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    largest = results["disk"][-1]["lanes"]
    fastest = fastest_engine(largest)
    ratio = largest["ours"]["wall_s"] / largest[fastest]["wall_s"]
    out.append(
        _target(
            f"compute <= {SPEED_TARGET}x the fastest engine ({fastest}), from disk, "
            f"{results['disk'][-1]['rows']:,} rows",
            f"{ratio:.2f}x wall ({largest['ours']['cpu_s'] / largest[fastest]['cpu_s']:.2f}x CPU)",
            ratio <= SPEED_TARGET,
        )
    )
    ours_points = [(group, point) for group in GROUPS for point in results[group]]
    worst = max(point["lanes"]["ours"]["peak_rss_mb"] for _, point in ours_points)
    out.append(
        _target(f"peak RSS < {RSS_LIMIT_MB} MB (ours, disk and S3)", f"{worst:.0f} MB", worst < RSS_LIMIT_MB)
    )
    if len(results["disk"]) > 1:
        growths = {
            group: results[group][-1]["lanes"]["ours"]["peak_rss_mb"]
            / results[group][0]["lanes"]["ours"]["peak_rss_mb"]
            for group in GROUPS
        }
        out.append(
            _target(
                f"peak RSS flat: largest <= {FLAT_TARGET}x smallest (ours)",
                ", ".join(f"{growth:.2f}x {group}" for group, growth in growths.items()),
                max(growths.values()) <= FLAT_TARGET,
            )
        )
    exact = all(point["lanes"]["ours"]["exact"] for _, point in ours_points)
    out.append(
        _target("ours: sums and counts equal the generator's (disk and S3)", "yes" if exact else "NO", exact)
    )
    return out


def _target(target: str, measured: str, met: bool) -> dict[str, Any]:
    return {"target": target, "measured": measured, "met": met}


# --- reporting ------------------------------------------------------------------------------------

LANE_HEADER = ("lane", "rows", "MB", "wall s", "wall s range", "CPU s", "MB/s", "peak RSS MB", "sums")
RATIO_HEADER = ("comparison", "rows", "wall", "CPU")


def _sums_cell(lane: dict[str, Any]) -> str:
    if lane["exact"]:
        return "exact"
    counts = "counts right" if lane["counts_right"] else "counts WRONG"
    return f"drift {float(lane['drift']):.3g}, {counts}"


def _lane_rows(points: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            lane["name"],
            f"{point['rows']:,}",
            f"{point['bytes'] / 1e6:.0f}",
            f"{lane['wall_s']:.2f}",
            f"{min(lane['repeats_wall_s']):.2f}–{max(lane['repeats_wall_s']):.2f}",
            f"{lane['cpu_s']:.2f}",
            f"{lane['mb_per_s']:.1f}",
            f"{lane['peak_rss_mb']:.0f}",
            _sums_cell(lane),
        ]
        for point in points
        for lane in point["lanes"].values()
    ]


def _ratio_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for group in GROUPS:
        for point in results[group]:
            lanes = point["lanes"]
            others = [fastest_engine(lanes)] if any(name in ENGINES for name in lanes) else []
            pairs = [("ours", other) for other in [*others, "pandas"]]
            pairs += [("ours_processes", other) for other in others if "ours_processes" in lanes]
            for mine, other in pairs:
                label = f"{mine} vs {other}" + (" (the fastest engine)" if other in ENGINES else "")
                rows.append(
                    [
                        f"{group}: {label}",
                        f"{point['rows']:,}",
                        f"{lanes[mine]['wall_s'] / lanes[other]['wall_s']:.2f}x",
                        f"{lanes[mine]['cpu_s'] / lanes[other]['cpu_s']:.2f}x",
                    ]
                )
    return rows


def text(results: dict[str, Any]) -> str:
    lines = []
    for group in GROUPS:
        lines += [f"{GROUP_TITLES[group]} (median of {results[group][0]['repeat']} runs)"]
        lines += [report._table(LANE_HEADER, _lane_rows(results[group])), ""]
    lines += [report._table(RATIO_HEADER, _ratio_rows(results)), ""]
    lines += [report._table(report.TARGET_HEADER, report._target_rows(results))]
    return "\n".join(lines)


def markdown(results: dict[str, Any], chart_name: str) -> list[str]:
    disk, s3 = results["disk"], results["s3"]
    largest = disk[-1]
    repeat = largest["repeat"]
    return [
        SECTION_TITLE,
        "",
        "Generated by `python -m bench.column_sums --write-docs` (`make bench-sums ARGS=--write-docs`); "
        "do not edit by hand. `make bench-sums ARGS=--quick` runs every lane once on 20,000 rows in "
        "about half a minute.",
        "",
        "The compute of issue 15's `csv_column_sums`: every 10th column of a CSV summed, with the count of "
        "numeric, blank and non-numeric cells, on files from `devservices.csv_columns` (30 columns: an id, "
        "quoted text with commas and line breaks, decimals of 0 to 6 fraction digits of either sign, 1% "
        'blank, 0.1% junk such as `n/a`, `1.2.3`, `NaN`, `"12,5"`). Every lane\'s sums and counts are '
        "compared with the generator's, which come from its own choices, not from a parser. Each lane runs "
        "in a fresh process with its libraries imported before the clock starts, the lanes taking turns, "
        f"{repeat} runs each; the median run is shown. MB/s are of file bytes over wall time; peak RSS is "
        "the lane's process (for `ours_processes` plus each worker counted at the largest one's).",
        "",
        "- **ours**: `include.column_sums.sums.sum_columns` on one core, the task's compute (from S3: "
        "through `include.column_sums.storage.open_source`, the Amazon provider's client and the resumable "
        "stream of `include/common/s3_stream.py`, as the task reads). **ours_processes**: the same with a "
        "worker process per core, their start-up included.",
        "- **duckdb**: `read_csv` with the summed columns as VARCHAR, "
        "`TRY_CAST(trim(cell) AS DECIMAL(38, 6))`, every core.",
        "- **polars**: `scan_csv` with every column as text, `str.strip_chars()`, "
        "`cast(Decimal(38, 6), strict=False)` (not a decimal: null), the streaming engine, every core. "
        "Decimal sums, exact (the generator writes at most 6 fraction digits; Polars, like DuckDB, needs "
        "the scale chosen in advance).",
        "- **pyarrow**: the streaming `pyarrow.csv.open_csv` (4 MiB blocks), the summed columns as strings, "
        "trimmed, cast to `decimal128(38, 6)`. Arrow has no try-cast (one bad cell fails the batch's cast, "
        "`safe=False` or not), so only cells matching a plain decimal are cast: exact, and the same counts "
        "on these files, which hold no exponents.",
        '- **pandas**: `read_csv(usecols=…, dtype=str)` and `to_numeric(errors="coerce").sum()`, what most '
        "users write: float sums, so they drift from the exact ones.",
        "",
        "From S3, the same file is uploaded to moto's S3 server running in a thread of the benchmark's "
        "process on the same machine, read over HTTP by **ours**, **polars** "
        '(`scan_csv("s3://…", storage_options=…)`), **pyarrow** (`S3FileSystem(endpoint_override=…)`, '
        "its input stream through a 64 MiB buffer into the same streaming reader: unbuffered, every 4 MiB "
        "read is a ranged GET, and 719 MB took 145 s) and **pandas** (through s3fs); DuckDB reads "
        "S3 only through its `httpfs` extension, a download this offline machine does not make. The server "
        "shares the two cores with the lane it serves and does not appear in the lane's CPU seconds: "
        "these figures are bounded by moto, not by a network, and say how the lanes compare, not what "
        "AWS would give.",
        "",
        _machine_sentence(results["machine"]),
        "",
        *[
            line
            for group in GROUPS
            for line in (
                f"## {GROUP_TITLES[group]}",
                "",
                report._markdown_table(LANE_HEADER, _lane_rows(results[group])),
                "",
            )
        ],
        "## Ratios",
        "",
        "Below 1 is faster than the other lane; the fastest engine is chosen at each size.",
        "",
        report._markdown_table(RATIO_HEADER, _ratio_rows(results)),
        "",
        "## Targets",
        "",
        report._markdown_table(report.TARGET_HEADER, report._target_rows(results)),
        "",
        *_where_the_time_goes(disk, s3),
        f"![MB/s and peak RSS of each lane, disk and S3, at each size]({chart_name})",
        "",
    ]


def _machine_sentence(box: dict[str, Any]) -> str:
    start, end = box["load_average_1min"]
    busy = " (above the number of CPUs: other work shared them)" if max(start, end) > box["nproc"] else ""
    return (
        f"Machine: {box['nproc']} CPUs ({box['cpu']}), {box['memory_gb']} GB memory, Python {box['python']}. "
        f"Load average (1 min) {start:.1f} at the start, {end:.1f} at the end{busy}."
    )


def _where_the_time_goes(disk: list[dict[str, Any]], s3: list[dict[str, Any]]) -> list[str]:
    """What the figures say, from this run's own numbers."""
    small, large = disk[0]["lanes"], disk[-1]["lanes"]
    fastest = fastest_engine(large)
    ours, processes, engine = large["ours"], large["ours_processes"], large[fastest]
    remote = s3[-1]["lanes"]
    remote_fastest = fastest_engine(remote)
    remote_engines = ", ".join(
        f"{name} {remote[name]['wall_s']:.1f} s for {remote[name]['cpu_s']:.1f} CPU s"
        for name in remote
        if name in ENGINES
    )
    return [
        f"**Speed.** At {disk[-1]['rows']:,} rows, ours took {ours['cpu_s']:.1f} CPU s on one core; "
        f"{fastest}, the fastest engine, {engine['cpu_s']:.1f} CPU s over "
        f"{engine['cpu_s'] / engine['wall_s']:.1f} cores on average. Per CPU second ours is "
        f"{ours['cpu_s'] / engine['cpu_s']:.2f}x the engine; the wall-time gap is mostly the second core. "
        f"With a worker process per core (`ours_processes`) ours took {processes['wall_s']:.2f} s for "
        f"{processes['cpu_s']:.1f} CPU s (one process: {ours['wall_s']:.2f} s, {ours['cpu_s']:.1f} CPU s). "
        "Where the extra CPU goes (the reading process, blocks pickled to the workers, their start-up) "
        "is not broken down here; on two cores shared with the benchmark and other work, it takes what "
        "the second core gives.",
        "",
        f"**Memory.** Ours peaks at {ours['peak_rss_mb']:.0f} MB at {disk[-1]['rows']:,} rows and "
        f"{small['ours']['peak_rss_mb']:.0f} MB at {disk[0]['rows']:,}: it holds a few 1 MiB blocks, never "
        f"the columns. From S3 it peaks at {remote['ours']['peak_rss_mb']:.0f} MB, the Amazon provider and "
        f"Airflow's configuration imported. {fastest} peaks at {engine['peak_rss_mb']:.0f} MB; pandas, "
        f"which holds the three columns as Python strings, at {large['pandas']['peak_rss_mb']:.0f} MB.",
        "",
        f"**S3.** At {s3[-1]['rows']:,} rows ours read and summed {remote['ours']['mb_per_s']:.0f} MB/s from "
        f"the local S3 server against {ours['mb_per_s']:.0f} MB/s from disk; the engines: {remote_engines} "
        f"(the fastest from S3: {remote_fastest}). Where a lane's wall time grows from disk to S3 far more "
        "than its CPU seconds, it was waiting for the server, which answers every request in Python on "
        "the same two cores and is slower with many ranged GETs than with one stream: the S3 figures "
        "rank the lanes against this server, not against AWS.",
        "",
    ]


def write_chart(results: dict[str, Any], path: Path) -> None:
    """MB/s and peak RSS of every lane, disk and S3, one bar per size."""
    from matplotlib.figure import Figure  # deferred: only the docs draw

    # The lanes of the results, not of this code: --rewrite-docs may draw an older run.
    names = [(group, name) for group in GROUPS for name in results[group][0]["lanes"]]
    labels = [f"{name}\n({group})" for group, name in names]
    sizes = [point["rows"] for point in results["disk"]]
    width = 0.8 / len(sizes)
    figure = Figure(figsize=(12, 4.5), layout="constrained")
    speed_axes, memory_axes = figure.subplots(1, 2)
    for index, rows in enumerate(sizes):
        lanes = [
            next(point for point in results[group] if point["rows"] == rows)["lanes"][name]
            for group, name in names
        ]
        positions = [lane + (index - (len(sizes) - 1) / 2) * width for lane in range(len(labels))]
        speed_axes.bar(positions, [lane["mb_per_s"] for lane in lanes], width, label=f"{rows:,} rows")
        memory_axes.bar(positions, [lane["peak_rss_mb"] for lane in lanes], width, label=f"{rows:,} rows")
    memory_axes.axhline(RSS_LIMIT_MB, color="grey", linestyle="--", linewidth=1, label="target (ours)")
    speed_axes.set(ylabel="MB/s (higher is better)", title="Throughput")
    memory_axes.set(ylabel="MB", title="Peak RSS of the lane's process")
    for axes in (speed_axes, memory_axes):
        axes.set_xticks(range(len(labels)), labels, fontsize="small", rotation=45, ha="right")
        axes.grid(True, axis="y", alpha=0.3)
        axes.legend(fontsize="small")
    figure.savefig(path, dpi=100)


def write_docs(results: dict[str, Any], document: Path, chart: Path) -> None:
    """Rewrite this pipeline's part of ``document`` (appended when it has none) and its chart."""
    write_chart(results, chart)
    report.write_section(document, markdown(results, chart.name))


# --- the command ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    args = _parse_args(argv)
    state_dir: Path = args.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    if args.rewrite_docs:
        results = json.loads((state_dir / "results.json").read_text())
    else:
        sizes = [QUICK_ROWS] if args.quick else [int(rows) for rows in args.rows.split(",")]
        started = time.perf_counter()
        results = measure(state_dir, sizes, args.columns, 1 if args.quick else args.repeat)
        results["seconds"] = round(time.perf_counter() - started, 1)
        (state_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(text(results))
    if args.write_docs or args.rewrite_docs:
        write_docs(results, DOCS / "PERFORMANCE.md", DOCS / CHART)
        log.info("wrote the csv_column_sums section of %s and %s", DOCS / "PERFORMANCE.md", DOCS / CHART)
    print(json.dumps(results))
    return 0


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.column_sums",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", default="300000,3000000", help="comma-separated file sizes in rows")
    parser.add_argument("--columns", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help=f"one file of {QUICK_ROWS:,} rows: a smoke test")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each lane; the median is reported")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    parser.add_argument(
        "--write-docs", action="store_true", help="rewrite the csv_column_sums section of docs/PERFORMANCE.md"
    )
    parser.add_argument(
        "--rewrite-docs", action="store_true", help="rewrite that section from the last results.json"
    )
    args = parser.parse_args(argv)
    if args.write_docs and args.quick:
        parser.error("--write-docs needs a full run: drop --quick")
    return args


if __name__ == "__main__":
    sys.exit(main())
