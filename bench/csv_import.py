"""``csv_folder_import`` measured: our import beside the other ways of loading the same files.

    python -m bench.csv_import [--sizes 200MB,2GB] [--files 8] [--rounds 3] [--quick] [--write-docs]

For each size, the demo generator (``devservices.energy_certificates``) writes one drop, with no
defect and no zip: ``psql \\copy`` stops at the first bad line and cannot read a zip, and every
lane must read the very same files. The drop keeps its variety (``;``, CRLF, a BOM, cp1252, an
extra and a missing column), which each lane is told about from the manifest. Then, side by side,
each lane in a fresh process of its own, the lanes taking turns for ``--rounds`` rounds (each
lane's median round is reported):

- **ours**: the pipeline's import, its task bodies without Airflow's scheduler: the chunks
  imported by two processes at once, as two workers' slots would (``our_import``);
- **ours, reader only**: the same plan read and checked by the same two processes, and the
  COPY input made, nothing written: ours minus this is what writing costs;
- **psql \\copy, 1 at a time** and **2 at a time**: one ``psql`` per file into a bare table of the
  right column types, the practical limit of loading CSV into PostgreSQL;
- **the seed's way**: pandas ``read_csv`` + ``DataFrame.to_sql`` in a ``multiprocessing.Pool``
  over the files, as the seed's script did. Too slow for the whole drop: it runs on a sample
  (the first ``--pandas-sample`` of two files) and is extrapolated, and says so;
- **DuckDB**: parse and type every value of every file, write nothing: what a parser can do on
  this machine, to show where an import's CPU goes;
- **ours** and **psql \\copy, 2 at a time** again, **the database on a CPU of its own**: the
  server's processes pinned to the first CPU, the lane's to the others, as where the database
  runs on a machine of its own. ``psql`` leaves all the work to the server and ours does part of
  it on the workers' side: sharing two CPUs, that part is taken from the server; here it is not.

Each lane reports MB/s and rows/s, its CPU time and the peak RSS of its own process and of its
largest child (``psql``, a pool worker), and the rows it loaded, which must equal the rows in
(``rows_out == rows_in``). The PostgreSQL server's own memory is not a lane's and is not counted.

The table is printed; the last line of stdout is one JSON object with every figure, also written
to ``<state dir>/results.json``. ``--write-docs`` rewrites the ``csv_folder_import`` part of
docs/PERFORMANCE.md and docs/performance_csv_import.png, nothing else.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import psycopg
from psycopg import sql

from bench import report
from bench.baselines import find_psql
from bench.services import (
    airflow_settings,
    checkpoint,
    in_fresh_process,
    interrupt_on_sigterm,
    lane_outcome,
    measure_sizes,
    processes_peak_rss_mb,
    this_process,
    warm_workers,
)
from devservices.energy_certificates import generate
from devservices.environment import PROJECT_ROOT
from devservices.postgres import HOST, LocalPostgres
from devservices.sizes import parse_size, sizes_argument

if TYPE_CHECKING:
    from include.csv_import.model import Chunk, FileSchema
    from include.csv_import.spec import ImportSpec

log = logging.getLogger("bench")

DEFAULT_STATE_DIR = PROJECT_ROOT / ".local" / "bench-csv-import"
DOCS = PROJECT_ROOT / "docs"
SECTION_TITLE = "# Performance of csv_folder_import"
CHART = "performance_csv_import.png"
SCHEMA = "bench_csv"
DATABASE = "bench_csv"
SEED = 1
RSS_LIMIT_MB = 300
# Chunks imported at once by the "ours" lanes: two Airflow workers' slots on this 2-core machine.
IMPORT_WORKERS = 2
OUR_TABLE = "ours"
# DuckDB reads Latin-1, not cp1252; the generator's accented letters are the same in both.
DUCKDB_ENCODINGS = {"utf-8": "utf-8", "cp1252": "latin-1"}
DUCKDB_TYPES = {
    "text": "VARCHAR",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "numeric": "DECIMAL(18,6)",
    "date": "DATE",
    "timestamptz": "TIMESTAMPTZ",
    "boolean": "BOOLEAN",
}


@dataclass(frozen=True, slots=True)
class Drop:
    """One generated drop, as a lane process receives it."""

    folder: Path
    manifest: dict[str, Any]

    @property
    def rows(self) -> int:
        return self.manifest["totals"]["good_rows"]

    @property
    def bytes(self) -> int:
        return self.manifest["totals"]["bytes"]

    @property
    def files(self) -> list[dict[str, Any]]:
        return self.manifest["files"]


@dataclass(frozen=True, slots=True)
class Loaded:
    """What a lane did: ``rows_out`` of ``rows_in`` expected, reading ``bytes`` of CSV.

    A lane that worked on a sample says what the sample was; its rate is extrapolated to the drop.
    """

    rows_in: int
    rows_out: int
    bytes: int
    sample: str | None = None
    # The sample's own time, without what a whole run pays once (starting a pool, imports).
    sample_s: float | None = None
    # The work's own time, without starting processes and importing Airflow (see warm_workers).
    run_s: float | None = None
    # Of a lane whose work is done by processes of its own: chunks, and each process's peak RSS.
    workers: dict[str, Any] | None = None


# A lane takes the drop and a conninfo for an empty database of its own and returns what it loaded.
Lane = Callable[[Drop, str, argparse.Namespace], Loaded]


def our_import(drop: Drop, conninfo: str, args: argparse.Namespace) -> Loaded:
    """The pipeline's own import of every file of ``drop`` into one table: the lane that matters.

    The task bodies of ``include.csv_import.tasks`` in the DAG's order, without Airflow's
    scheduler: migrate, discover, infer, prepare, plan in this process; the planned chunks
    imported by ``IMPORT_WORKERS`` processes at once (two Airflow workers' slots), each chunk in
    its own connection and transaction as its mapped task would; then publish. The bodies find
    the destination as in a task, through the Airflow connection the spec names, here defined in
    the environment (which the spawned workers inherit).
    """
    from airflow.sdk.execution_time.context import OutletEventAccessors

    from include.csv_import import tasks

    spec = _our_spec(drop)
    with (
        airflow_settings(spec.conn_id, conninfo),
        warm_workers(IMPORT_WORKERS, _import_the_pipeline) as (pool, started),
    ):
        tasks.migrate(spec)
        tasks.discover(spec)
        tasks.infer(spec)
        tasks.prepare(spec)
        chunks = tasks.plan(spec)
        jobs = [(spec, chunk["file_id"], chunk["number"]) for chunk in chunks]
        imported = pool.starmap(_our_chunk, jobs, chunksize=1)
        tasks.publish(spec, OutletEventAccessors())
        run_s = time.perf_counter() - started
    return Loaded(
        rows_in=drop.rows,
        rows_out=_count(conninfo, OUR_TABLE),
        bytes=drop.bytes,
        run_s=run_s,
        workers=_workers_figures(imported),
    )


def our_reader(drop: Drop, conninfo: str, args: argparse.Namespace) -> Loaded:
    """The pipeline's reader alone: every chunk of the plan read and checked, nothing written.

    The same inference, plan and ``read_chunk_plain`` as ``ours``, with the same two processes,
    and the COPY input of plain records made, but the rows are counted instead of COPYed:
    ``ours`` minus this is what writing costs.
    """
    from include.csv_import import planning, sources
    from include.csv_import.inference import infer

    spec = _our_spec(drop)
    with warm_workers(IMPORT_WORKERS, _import_the_pipeline) as (pool, started):
        files = sources.discover(spec.source, spec.pattern, conn_id=None)
        inference = infer(files, conn_id=None, max_rejected_share=spec.max_rejected_share)
        jobs = [
            (schema, chunk)
            for schema in inference.files
            for chunk in planning.plan_file(
                schema.file, schema.dialect, chunk_bytes=spec.chunk_bytes, conn_id=None
            ).chunks
        ]
        read = pool.starmap(_read_chunk, jobs, chunksize=1)
        run_s = time.perf_counter() - started
    return Loaded(
        rows_in=drop.rows,
        rows_out=sum(figures["rows"] for figures in read),
        bytes=drop.bytes,
        run_s=run_s,
        workers=_workers_figures(read),
    )


def psql_copy_one_at_a_time(drop: Drop, conninfo: str, args: argparse.Namespace) -> Loaded:
    return _psql_copy(drop, conninfo, workers=1)


def psql_copy_two_at_a_time(drop: Drop, conninfo: str, args: argparse.Namespace) -> Loaded:
    return _psql_copy(drop, conninfo, workers=2)


def pandas_pool(drop: Drop, conninfo: str, args: argparse.Namespace) -> Loaded:
    """The seed's script: ``read_csv`` (types guessed by pandas) and ``to_sql``, a pool over files.

    Its first two files of the commonest layout, each cut to half of ``args.pandas_sample`` bytes
    (pro rata of their records), are the sample. The table is created from the first frame's
    guessed types before the pool starts, as the seed's first file did.
    """
    import sqlalchemy  # deferred: a development dependency only this lane needs (with pandas)

    layouts = Counter(tuple(entry["columns"]) for entry in drop.files)
    common = layouts.most_common(1)[0][0]
    chosen = [entry for entry in drop.files if tuple(entry["columns"]) == common][:2]
    jobs = []
    for entry in chosen:
        share = min(1.0, args.pandas_sample / len(chosen) / entry["bytes"])
        jobs.append((str(drop.folder / entry["path"]), entry, max(1, int(entry["records"] * share))))
    url = _sqlalchemy_url(conninfo)
    # Enough rows for pandas to see a value in every column (address3 is mostly empty).
    first = _read_frame(*jobs[0], rows=1000)
    engine = sqlalchemy.create_engine(url)
    try:
        first.head(0).to_sql("pandas_pool", engine, schema=SCHEMA, if_exists="replace", index=False)
    finally:
        engine.dispose()
    with multiprocessing.get_context("spawn").Pool(len(jobs)) as pool:
        timed = pool.starmap(_pandas_worker, [(url, *job) for job in jobs])
        pool.close()
        pool.join()
    rows_in = sum(rows for _, _, rows in jobs)
    sample_bytes = sum(int(entry["bytes"] * rows / entry["records"]) for _, entry, rows in jobs)
    names = ", ".join(Path(path).name for path, _, _ in jobs)
    return Loaded(
        rows_in=rows_in,
        rows_out=_count(conninfo, "pandas_pool"),
        bytes=sample_bytes,
        sample=f"{rows_in:,} rows ({sample_bytes / 1e6:.0f} MB) of {names}",
        # The workers ran side by side: the sample took as long as the slower one.
        sample_s=max(seconds for _, seconds in timed),
    )


def duckdb_parse(drop: Drop, conninfo: str, args: argparse.Namespace) -> Loaded:
    """Every value of every file parsed and typed by DuckDB (all cores), nothing written anywhere.

    ``count(COLUMNS(*))``, a count of every column, makes DuckDB convert each value (a value its
    type refuses fails the query), where ``count(*)`` alone would let it skip the typing.
    """
    import duckdb  # deferred: a development dependency only this lane needs

    types = _column_types(drop)
    rows = 0
    with duckdb.connect() as db:
        for entry in drop.files:
            parameters = {
                "path": str(drop.folder / entry["path"]),
                "delimiter": entry["delimiter"],
                "encoding": DUCKDB_ENCODINGS[entry["encoding"]],
                "columns": {name: DUCKDB_TYPES[types[name]] for name in entry["columns"]},
            }
            rows += db.execute(_DUCKDB_QUERY, parameters).fetchall()[0][0]
    return Loaded(rows_in=drop.rows, rows_out=rows, bytes=drop.bytes)


_DUCKDB_QUERY = (
    "SELECT count(*), count(COLUMNS(*)) FROM read_csv($path, header = true, delim = $delimiter, "
    "quote = '\"', escape = '\"', encoding = $encoding, columns = $columns)"
)

OURS, OUR_READER = "ours", "ours, reader only (no write)"
COPY_1, COPY_2 = "psql \\copy, 1 at a time", "psql \\copy, 2 at a time"
SEED_WAY = "seed's way: pandas to_sql, Pool"
DUCKDB = "DuckDB parse + type, no write"
APART = ", the database on a CPU of its own"
OURS_APART, COPY_2_APART = OURS + APART, COPY_2 + APART
LANES: dict[str, Lane] = {
    OURS: our_import,
    OUR_READER: our_reader,
    COPY_1: psql_copy_one_at_a_time,
    COPY_2: psql_copy_two_at_a_time,
    SEED_WAY: pandas_pool,
    DUCKDB: duckdb_parse,
    OURS_APART: our_import,
    COPY_2_APART: psql_copy_two_at_a_time,
}
# Lanes run with the server pinned to one CPU and the lane to the others (see _database_apart).
DATABASE_APART = frozenset({OURS_APART, COPY_2_APART})


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    args = _parse_args(argv)
    interrupt_on_sigterm()
    state_dir: Path = args.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    points, machine = measure_sizes(
        state_dir, args.sizes, lambda server, size: _measure_size(server, state_dir, size, args)
    )
    results = {"sizes": points, "targets": targets(points), "machine": machine}
    print(text_tables(results))
    (state_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    if args.write_docs:
        write_docs(results, DOCS / "PERFORMANCE.md", DOCS / CHART)
        log.info("wrote the csv_folder_import section of %s and %s", DOCS / "PERFORMANCE.md", DOCS / CHART)
    print(json.dumps(results))
    return 0


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.csv_import",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="one drop of 10 MB in 4 files, a 1 MB pandas sample"
    )
    parser.add_argument("--sizes", type=sizes_argument, help="comma-separated drop sizes (default 200MB,2GB)")
    parser.add_argument("--files", type=int, help="data files per drop (default 8; quick 4)")
    parser.add_argument(
        "--pandas-sample", type=parse_size, help="bytes the seed's way loads (default 50MB; quick 1MB)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        help="runs of every lane, taking turns; the median is reported (default 3; quick 1)",
    )
    parser.add_argument(
        "--write-docs",
        action="store_true",
        help="rewrite the csv_folder_import section of docs/PERFORMANCE.md and its chart",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="cluster, drops and results.json (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    args.sizes = args.sizes or ((10_000_000,) if args.quick else (200_000_000, 2_000_000_000))
    args.files = args.files or (4 if args.quick else 8)
    args.pandas_sample = args.pandas_sample or (1_000_000 if args.quick else 50_000_000)
    args.rounds = args.rounds or (1 if args.quick else 3)
    if args.write_docs and args.quick:
        parser.error("--write-docs needs a full run: drop --quick")
    return args


def _measure_size(server: LocalPostgres, state_dir: Path, size: int, args: argparse.Namespace) -> dict:
    folder = state_dir / f"drop-{size}"
    shutil.rmtree(folder, ignore_errors=True)
    try:
        log.info("generating a drop of %.0f MB in %d files", size / 1e6, args.files)
        started = time.perf_counter()
        manifest = generate(folder, size=size, files=args.files, defects=0, zipped=0, seed=SEED)
        generate_s = time.perf_counter() - started
        drop = Drop(folder, manifest)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in LANES}
        for round_ in range(args.rounds):  # lanes take turns, so that a busy moment hits them all
            for name in LANES:
                runs[name].append(_run_lane(server, name, drop, args))
                log.info(
                    "  %-32s %s (round %d of %d)",
                    name,
                    _lane_sentence(runs[name][-1]),
                    round_ + 1,
                    args.rounds,
                )
        lanes = {
            name: report.median_run(lane_runs, "mb_per_s") if lane_runs[0]["measured"] else lane_runs[0]
            for name, lane_runs in runs.items()
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "size": size,
        "bytes": drop.bytes,
        "files": len(drop.files),
        "rows": drop.rows,
        "generate_s": round(generate_s, 3),
        "lanes": lanes,
    }


# --- a lane in its own process ------------------------------------------------------------------


def _run_lane(server: LocalPostgres, name: str, drop: Drop, args: argparse.Namespace) -> dict[str, Any]:
    """The lane in a fresh ``spawn`` process, on a database of its own, after a CHECKPOINT."""
    apart = name in DATABASE_APART
    if apart and len(os.sched_getaffinity(0)) < 2:
        return {"name": name, "measured": False, "skipped": "one CPU: the database cannot have its own"}
    dbname = f"{DATABASE}_{list(LANES).index(name)}"
    server.drop_database(dbname)
    server.create_database(dbname)
    conninfo = server.conninfo(dbname)
    _bare_table(conninfo, drop)
    checkpoint(conninfo)
    cpus = None
    with _database_apart(server) if apart else nullcontext(None) as lane_cpus:
        outcome, exitcode = in_fresh_process(_lane_process, name, drop, conninfo, args, lane_cpus)
        if apart:
            # Read back at the lane's end: what the server's processes really ran on.
            cpus = {"database": sorted(_postmaster(server).cpu_affinity()), "lane": sorted(lane_cpus)}
    server.drop_database(dbname)
    if "skipped" in outcome:
        return {"name": name, "measured": False, "skipped": outcome["skipped"]}
    if "error" in outcome:
        raise RuntimeError(f"lane {name!r} failed (exit code {exitcode}): {outcome['error']}")
    return {**_lane_figures(name, drop, outcome), "cpus": cpus}


def _lane_process(
    name: str,
    drop: Drop,
    conninfo: str,
    args: argparse.Namespace,
    cpus: set[int] | None,
    sender: Connection,
) -> None:
    if cpus is not None:
        os.sched_setaffinity(0, cpus)  # its pool workers and psql processes inherit it
    sender.send(lane_outcome(lambda: LANES[name](drop, conninfo, args)))
    sender.close()


@contextmanager
def _database_apart(server: LocalPostgres) -> Iterator[set[int]]:
    """The server's processes on the first CPU while inside; yields the other CPUs, for the lane.

    Backends fork from the postmaster, so the connections the lane opens inherit the pinning.
    """
    cpus = os.sched_getaffinity(0)
    server_cpu = min(cpus)
    postmaster = _postmaster(server)

    def pin(chosen: set[int]) -> None:
        for process in (postmaster, *postmaster.children(recursive=True)):
            with suppress(psutil.NoSuchProcess):
                process.cpu_affinity(sorted(chosen))

    pin({server_cpu})
    try:
        yield cpus - {server_cpu}
    finally:
        pin(cpus)


def _postmaster(server: LocalPostgres) -> psutil.Process:
    return psutil.Process(int((server.data_dir / "postmaster.pid").read_text().split()[0]))


def _lane_figures(name: str, drop: Drop, outcome: dict[str, Any]) -> dict[str, Any]:
    loaded: Loaded = outcome["result"]
    wall_s = outcome["wall_s"]
    extrapolated = loaded.sample is not None
    rate_s = loaded.sample_s if extrapolated and loaded.sample_s else loaded.run_s or wall_s
    rows_per_s = loaded.rows_out / rate_s if rate_s > 0 else 0.0
    mb_per_s = loaded.bytes / 1e6 / rate_s if rate_s > 0 else 0.0
    return {
        "name": name,
        "measured": True,
        "extrapolated": extrapolated,
        "sample": loaded.sample,
        "rows_in": loaded.rows_in,
        "rows_out": loaded.rows_out,
        "bytes_read": loaded.bytes,
        "wall_s": round(wall_s, 3),
        "sample_s": round(loaded.sample_s, 3) if loaded.sample_s is not None else None,
        # The whole drop's time: measured, or the sample's rate applied to every row of the drop.
        "drop_s": round(drop.rows / rows_per_s if extrapolated else rate_s, 3),
        # Starting processes and importing Airflow before the clock started (see warm_workers).
        "start_s": round(wall_s - loaded.run_s, 3) if loaded.run_s is not None else None,
        "mb_per_s": round(mb_per_s, 2),
        "rows_per_s": round(rows_per_s, 1),
        "cpu_s": round(outcome["cpu_s"], 3),
        "children_cpu_s": round(outcome["children_cpu_s"], 3),
        "peak_rss_mb": round(outcome["peak_rss_mb"], 1),
        "children_peak_rss_mb": round(outcome["children_peak_rss_mb"], 1),
        "workers": loaded.workers,
    }


# --- the lanes' helpers -------------------------------------------------------------------------


def _our_spec(drop: Drop) -> ImportSpec:
    from include.csv_import.spec import ImportSpec

    return ImportSpec.from_params(
        {"source": str(drop.folder), "table": f"{SCHEMA}.{OUR_TABLE}", "mode": "replace"},
        run_id="bench",
        session_name="bench.csv_import",
    )


def _import_the_pipeline() -> None:
    from airflow.sdk import ObjectStoragePath  # noqa: F401  (what sources imports on first use)

    from include.csv_import import tasks  # noqa: F401


def _our_chunk(spec: ImportSpec, file_id: int, number: int) -> dict[str, Any]:
    from include.csv_import import tasks

    counts = tasks.import_chunk(spec, file_id, number)
    return {
        "rows": counts["rows"],
        "plain_rows": counts["plain_rows"],
        "seconds": counts["seconds"],
        **this_process(),
    }


def _read_chunk(schema: FileSchema, chunk: Chunk) -> dict[str, Any]:
    from include.csv_import import sources
    from include.csv_import.model import Row
    from include.csv_import.plain import PlainRecords, read_chunk_plain

    started = time.perf_counter()
    rows = plain_rows = 0
    with sources.open_chunk(chunk.file, chunk.start, chunk.end, conn_id=None) as stream:
        for item in read_chunk_plain(stream, chunk, schema):
            if isinstance(item, PlainRecords):
                item.payload(file_id=1)  # the COPY input is the reader's to make
                rows += item.rows
                plain_rows += item.rows
            elif isinstance(item, Row):
                rows += 1
    return {
        "rows": rows,
        "plain_rows": plain_rows,
        "seconds": round(time.perf_counter() - started, 3),
        **this_process(),
    }


def _workers_figures(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """The chunks' count and seconds, and the peak RSS each work process reached."""
    return {
        "chunks": len(chunks),
        "rows": sum(chunk["rows"] for chunk in chunks),
        "plain_rows": sum(chunk["plain_rows"] for chunk in chunks),
        "chunk_s": [chunk["seconds"] for chunk in chunks],
        "processes_peak_rss_mb": processes_peak_rss_mb(chunks),
    }


def _column_types(drop: Drop) -> dict[str, str]:
    return {column["name"]: column["type"] for column in drop.manifest["columns"]}


def _bare_table(conninfo: str, drop: Drop) -> None:
    """The union of the drop's columns with their types, no key, no constraint: the best case."""
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(column["name"]), sql.SQL(column["type"]))
        for column in drop.manifest["columns"]
    )
    with psycopg.connect(conninfo) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
        conn.execute(sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(SCHEMA, "bare"), columns))


def _psql_copy(drop: Drop, conninfo: str, workers: int) -> Loaded:
    psql = find_psql()
    if psql is None:
        raise NotImplementedError("no psql found in PATH or /usr/lib/postgresql")
    environment = {**os.environ, **_libpq_environment(conninfo)}
    commands = [_copy_command(drop, entry) for entry in drop.files]

    def run(command: str) -> None:
        completed = subprocess.run(
            [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", command],
            env=environment,
            capture_output=True,
            check=False,
        )
        if completed.returncode != 0:
            reason = completed.stderr.decode(errors="replace").strip()
            raise RuntimeError(f"{psql} \\copy failed (exit code {completed.returncode}): {reason}")

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(run, commands))
    return Loaded(rows_in=drop.rows, rows_out=_count(conninfo, "bare"), bytes=drop.bytes)


def _copy_command(drop: Drop, entry: dict[str, Any]) -> str:
    """A psql meta-command: psql parses it, so the path and identifiers are quoted for psql."""
    from include.csv_import.plain import PG_ENCODINGS

    path = "'" + str(drop.folder / entry["path"]).replace("'", "''") + "'"
    columns = ", ".join(_quoted_identifier(name) for name in entry["columns"])
    delimiter = "'" + entry["delimiter"].replace("'", "''") + "'"
    options = f"FORMAT csv, HEADER true, DELIMITER {delimiter}, ENCODING '{PG_ENCODINGS[entry['encoding']]}'"
    return f"\\copy {SCHEMA}.bare ({columns}) FROM {path} WITH ({options})"


def _quoted_identifier(name: str) -> str:
    """An identifier in a psql meta-command, which psql parses: psycopg.sql cannot compose it."""
    return '"' + name.replace('"', '""') + '"'


def _libpq_environment(conninfo: str) -> dict[str, str]:
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    names = {
        "host": "PGHOST",
        "port": "PGPORT",
        "user": "PGUSER",
        "password": "PGPASSWORD",
        "dbname": "PGDATABASE",
    }
    return {variable: str(params[key]) for key, variable in names.items() if key in params}


def _sqlalchemy_url(conninfo: str) -> str:
    from sqlalchemy.engine import URL

    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    return URL.create(
        "postgresql+psycopg",
        username=params.get("user"),
        password=params.get("password"),
        host=params.get("host", HOST),
        port=int(params["port"]) if "port" in params else None,
        database=params.get("dbname"),
    ).render_as_string(hide_password=False)


def _read_frame(path: str, entry: dict[str, Any], nrows: int, *, rows: int | None = None) -> Any:
    import pandas as pd

    return pd.read_csv(
        path,
        sep=entry["delimiter"],
        encoding="utf-8-sig" if entry["bom"] else entry["encoding"],
        nrows=rows or nrows,
    )


def _pandas_worker(url: str, path: str, entry: dict[str, Any], nrows: int) -> tuple[int, float]:
    """One file as the seed's worker loads it: (rows sent, seconds for read_csv and to_sql).

    The clock starts once pandas is imported and the engine connected: what a worker pays once
    is not extrapolated to the drop, in the seed's favour.
    """
    import pandas  # noqa: F401  (imported before the clock starts)
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect():
            pass
        started = time.perf_counter()
        frame = _read_frame(path, entry, nrows)
        frame.to_sql("pandas_pool", engine, schema=SCHEMA, if_exists="append", index=False)
        return len(frame), time.perf_counter() - started
    finally:
        engine.dispose()


def _count(conninfo: str, table: str) -> int:
    with psycopg.connect(conninfo) as conn:
        (count,) = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(SCHEMA, table))
        ).fetchone()
    return count


# --- what the run found ---------------------------------------------------------------------------


def targets(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets for the import beside the measured values; ``met`` None: not measured."""
    found: list[dict[str, Any]] = []

    def add(target: str, measured: str, met: bool | None) -> None:
        found.append({"target": target, "measured": measured, "met": met})

    largest = points[-1]
    ours, copy_2, seed = (largest["lanes"][name] for name in (OURS, COPY_2, SEED_WAY))
    ratio = _ratio(ours, copy_2)
    add("ours MB/s >= 0.8x psql \\copy 2 at a time", report._times(ratio), report._at_least(ratio, 0.8))
    ratio = _ratio(ours, seed)
    add("ours MB/s >= 20x the seed's way", report._times(ratio), report._at_least(ratio, 20))
    if ours["measured"]:
        worst = max(ours["peak_rss_mb"], ours["children_peak_rss_mb"])
        add(f"peak RSS per task < {RSS_LIMIT_MB} MB", f"{worst:.0f} MB", worst < RSS_LIMIT_MB)
    else:
        add(f"peak RSS per task < {RSS_LIMIT_MB} MB", "not measured", None)
    smallest = points[0]
    small = smallest["lanes"][OURS]
    if len(points) > 1 and ours["measured"] and small["measured"]:
        growth = max(ours["peak_rss_mb"], ours["children_peak_rss_mb"]) / max(
            small["peak_rss_mb"], small["children_peak_rss_mb"]
        )
        add("peak RSS flat: largest <= 1.2x smallest drop", f"{growth:.2f}x", growth <= 1.2)
        scale = largest["bytes"] / smallest["bytes"]
        slope = (ours["drop_s"] / small["drop_s"]) / scale
        add("time linear in size: (time ratio) / (size ratio) <= 1.2", f"{slope:.2f}", slope <= 1.2)
    else:
        add("peak RSS flat: largest <= 1.2x smallest drop", "not measured", None)
        add("time linear in size: (time ratio) / (size ratio) <= 1.2", "not measured", None)
    return found


def _ratio(lane: dict[str, Any], other: dict[str, Any]) -> float | None:
    """The median (the lower middle one) of the rounds' ratios of MB/s.

    Within a round the lanes ran one after the other, so a round's two lanes met about the same
    moment of this shared machine; the ratio of the two lanes' medians could pair one lane's quiet
    round with the other's busy one.
    """
    if not (lane["measured"] and other["measured"]):
        return None
    ratios = _round_ratios(lane, other)
    return round(statistics.median_low(ratios), 3) if ratios else None


def _round_ratios(lane: dict[str, Any], other: dict[str, Any]) -> list[float]:
    pairs = zip(lane["repeats_mb_per_s"], other["repeats_mb_per_s"], strict=True)
    return [mine / theirs for mine, theirs in pairs if theirs]


LANE_HEADER = ("lane", "MB/s", "rows/s", "drop s", "CPU s (children)", "peak RSS MB (largest child)", "how")


def _lane_rows(point: dict[str, Any]) -> list[list[str]]:
    rows = []
    for lane in point["lanes"].values():
        if not lane["measured"]:
            rows.append([lane["name"], "-", "-", "-", "-", "-", f"not measured: {lane['skipped']}"])
            continue
        how = f"extrapolated from {lane['sample']}" if lane["extrapolated"] else "measured on the whole drop"
        if len(lane.get("repeats_mb_per_s", ())) > 1:
            repeats = lane["repeats_mb_per_s"]
            how += f", median of {len(repeats)} rounds ({min(repeats):.1f} to {max(repeats):.1f} MB/s)"
        if lane.get("start_s") is not None:
            how += f", after {lane['start_s']:.0f} s starting its processes and importing Airflow"
        rows.append(
            [
                lane["name"],
                f"{lane['mb_per_s']:,.1f}",
                f"{lane['rows_per_s']:,.0f}",
                f"{lane['drop_s']:,.1f}",
                f"{lane['cpu_s']:.1f} ({lane['children_cpu_s']:.1f})",
                f"{lane['peak_rss_mb']:.0f} ({lane['children_peak_rss_mb']:.0f})",
                how,
            ]
        )
    return rows


def _point_title(point: dict[str, Any]) -> str:
    return (
        f"{point['bytes'] / 1e6:,.0f} MB in {point['files']} files, {point['rows']:,} rows "
        f"(generated in {point['generate_s']:.0f} s)"
    )


def _lane_sentence(lane: dict[str, Any]) -> str:
    if not lane["measured"]:
        return f"not measured: {lane['skipped']}"
    return (
        f"{lane['mb_per_s']:.1f} MB/s, {lane['rows_per_s']:,.0f} rows/s, {lane['rows_out']:,} rows out "
        f"of {lane['rows_in']:,}, peak RSS {lane['peak_rss_mb']:.0f} MB "
        f"(child {lane['children_peak_rss_mb']:.0f} MB)"
    )


def text_tables(results: dict[str, Any]) -> str:
    parts = []
    for point in results["sizes"]:
        parts += [_point_title(point), report._table(LANE_HEADER, _lane_rows(point)), ""]
    parts.append(report._table(report.TARGET_HEADER, report._target_rows(results)))
    return "\n".join(parts)


def markdown(results: dict[str, Any], chart_name: str | None) -> list[str]:
    out = [
        SECTION_TITLE,
        "",
        "Generated by `python -m bench.csv_import --write-docs`; do not edit by hand. "
        "`python -m bench.csv_import --quick` runs it on 10 MB in about a minute.",
        "",
        "The same generated drop (`devservices.energy_certificates`, no defects, no zips, its other "
        "variety kept) loaded every way, the lanes taking turns round after round (each lane's median "
        "round is shown: other work on this shared machine then weighs on every lane alike; a ratio of "
        "two lanes is the median of the rounds' ratios, as a round's lanes met the same moment), each in a "
        "fresh process after a "
        "`CHECKPOINT`, into a local PostgreSQL with default durability. MB/s are of CSV text read; "
        "peak RSS is the lane's process and, in brackets, its largest child (a `psql`, a pool "
        "worker) as Linux counts it, which includes what the child shared with the lane's process "
        "before it started its program (so a `psql` shows about the lane's own size); the server's "
        "memory is not counted. Every lane loaded as many rows as went in.",
        "",
        report.machine_sentence(results["machine"]),
        "",
    ]
    for point in results["sizes"]:
        out += [f"## {_point_title(point)}", "", report._markdown_table(LANE_HEADER, _lane_rows(point)), ""]
        out += [*_where_the_time_goes(point), ""]
    out += [
        "## Targets",
        "",
        report._markdown_table(report.TARGET_HEADER, report._target_rows(results)),
        "",
        *_for_scale(results["sizes"][-1]),
    ]
    if chart_name:
        out += [f"![MB/s and peak RSS of each lane against the drop's size]({chart_name})", ""]
    return out


def _where_the_time_goes(point: dict[str, Any]) -> list[str]:
    """Our import's chunks and processes, and its time split between reading and writing."""
    ours, reader, duckdb = (point["lanes"][name] for name in (OURS, OUR_READER, DUCKDB))
    if not (ours["measured"] and reader["measured"] and ours["workers"]):
        return []
    workers = ours["workers"]
    peaks = ", ".join(f"{peak:.0f}" for peak in workers["processes_peak_rss_mb"])
    lines = [
        f"**ours**: {workers['chunks']} chunk(s) imported by {len(workers['processes_peak_rss_mb'])} "
        f"processes at once, whose peak RSS was {peaks} MB; a chunk took "
        f"{min(workers['chunk_s']):.1f} to {max(workers['chunk_s']):.1f} s; "
        f"{workers['plain_rows']:,} of its {workers['rows']:,} rows went to COPY as plain records "
        "(the others through the careful reader).",
    ]
    read_share = reader["drop_s"] / ours["drop_s"] if ours["drop_s"] else 0.0
    ours_cpu = ours["cpu_s"] + ours["children_cpu_s"]
    reader_cpu = reader["cpu_s"] + reader["children_cpu_s"]
    writing_cpu = ours_cpu - reader_cpu
    cpu = (
        f"{writing_cpu:.1f} s of client CPU to the reader's {reader_cpu:.1f} s"
        if writing_cpu > 0
        else f"no client CPU that stands out from the rounds' spread (the reader's: {reader_cpu:.1f} s)"
    )
    lines.append(
        f"Where its time goes: reading alone (the same inference, plan, reader and processes, "
        f"nothing written) took {reader['drop_s']:.1f} s of its {ours['drop_s']:.1f} s "
        f"({read_share:.0%}); writing (COPY, the ledger, publish) added "
        f"{ours['drop_s'] - reader['drop_s']:.1f} s and {cpu}, besides the server's own work."
    )
    if duckdb["measured"] and duckdb["mb_per_s"]:
        lines.append(
            f"The reader (every record checked, the COPY input made) runs at {reader['mb_per_s']:.1f} "
            f"MB/s in {IMPORT_WORKERS} processes, {reader['mb_per_s'] / duckdb['mb_per_s']:.2f}x "
            "DuckDB's parse on all cores."
        )
    return [" ".join(lines)]


def _for_scale(point: dict[str, Any]) -> list[str]:
    """How far the targets are from what ``psql \\copy`` itself achieves on this machine."""
    psql_vs_seed = _ratio(point["lanes"][COPY_2], point["lanes"][SEED_WAY])
    if not (point["lanes"][OURS]["measured"] and psql_vs_seed):
        return []
    return [
        f"For scale, at {point['bytes'] / 1e6:,.0f} MB: `psql \\copy` 2 at a time is itself "
        f"{psql_vs_seed:.1f}x the seed's way here, so 20x the seed would take "
        f"{20 / psql_vs_seed:.1f}x psql's own speed. Ours runs two processes that check every "
        "record (NumPy and one RE2 pass over each 4 MiB block; the careful Python reader only for "
        "the records that are not plain) beside the two server processes that COPY them, on two "
        "CPUs; `psql` checks nothing and leaves all the parsing to the server.",
        *_apart_sentence(point),
        "",
    ]


def _apart_sentence(point: dict[str, Any]) -> list[str]:
    ours, copy_2 = (point["lanes"][name] for name in (OURS_APART, COPY_2_APART))
    ratio, shared = _ratio(ours, copy_2), _ratio(point["lanes"][OURS], point["lanes"][COPY_2])
    if ratio is None or shared is None:
        return []
    rounds = ", ".join(f"{each:.2f}" for each in _round_ratios(ours, copy_2))
    # The explanation only where this run bears it out: on a shared machine it may not.
    meaning = (
        ": the check's CPU no longer takes the server's. What is left is the run's steps before and "
        "after the import (hashing, inference, plan, verification, `ANALYZE`)."
        if ratio > shared
        else ": no better in this run."
    )
    return [
        "",
        f"With the database on a CPU of its own and the lanes on the other, as where the database "
        f"runs on a machine of its own (not the target's setting, which shares both CPUs), ours "
        f"ran at {ratio:.2f}x `psql \\copy` 2 at a time (rounds: {rounds}), against {shared:.2f}x "
        f"sharing both{meaning}",
    ]


def write_docs(results: dict[str, Any], document: Path, chart: Path) -> None:
    """Rewrite this pipeline's part of ``document`` (appended when it has none) and its chart."""
    report.write_lanes_chart(results["sizes"], chart)
    report.write_section(document, markdown(results, chart.name))


if __name__ == "__main__":
    sys.exit(main())
