"""``usage_files_ingest`` measured: our ingest beside DuckDB and the seed's way, on the same files.

    python -m bench.usage_ingest [--sizes 100MB,2GB] [--files 2] [--batch-mb 64,256,1024]
                                 [--quick] [--write-docs | --rewrite-docs]

For each size, ``devservices.usage_writer`` writes the files once (``--files`` of them, 100,000
consumers, 0.1 % bad lines of every kind) with its manifest, the true totals; they are kept in
the state folder, so the next run measures the same bytes without writing them again. Then, one
lane after the other, each in a fresh process of its own, after a ``CHECKPOINT`` and with the
files read once into the page cache (every lane reads them from memory, none from the disk):

- **ours, batch N MiB** (one lane per ``--batch-mb``): the pipeline's task bodies
  (``include.usage_ingest.tasks``) in the DAG's order without Airflow's scheduler: migrate and
  claim (which plans: sha256, line count, ranges) in this process, every range processed by two
  processes at once (two workers' slots) as its mapped task does it, batch after batch, each
  batch one transaction with its checkpoint; then finish (mark done, archive). Its totals in the
  store must equal the manifest's, consumer by consumer, and its applied and quarantined lines
  the manifest's lines: exactly once is checked, not assumed. The files are moved back from the
  archive afterwards (a rename: the next lane sees them unchanged);
- **ours, reading only**: the same plans and ``read_batches`` over the same ranges by the same two
  processes, nothing written: ours minus this is what the store costs;
- **DuckDB, our rules**: DuckDB (every core) computes the per-consumer totals of the same files,
  told our line rules in SQL (one space, digits only, no sign, the two ranges): the reference;
- **DuckDB, typed read only**: ``read_csv`` into two BIGINT columns and ``GROUP BY``, our rules not
  applied (it sums ``-1 2``, ``1 2 3`` and amounts beyond 10^12): DuckDB's ceiling here, not a
  correct answer;
- **the seed's way**: a Python loop over the lines of the first file with one upsert per line,
  on a sample (``--seed-sample`` lines), extrapolated to the drop and labelled so.

Each lane reports MB/s and lines/s, its CPU time and the peak RSS of its own process and of its
largest child (a worker), and how many consumers' totals differ from the manifest. The table is
printed; the last line of stdout is one JSON object with every figure, also written to
``<state dir>/results.json``. ``--write-docs`` rewrites the ``usage_files_ingest`` part of
docs/PERFORMANCE.md and docs/performance_usage_ingest.png, nothing else; ``--rewrite-docs``
does so from the last run's results.json without measuring again.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from bench import report
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
from devservices.environment import PROJECT_ROOT
from devservices.postgres import LocalPostgres
from devservices.sizes import sizes_argument
from devservices.usage_writer import MAX_AMOUNT, MAX_CONSUMER, Manifest, write_files

log = logging.getLogger("bench")

DEFAULT_STATE_DIR = PROJECT_ROOT / ".local" / "bench-usage-ingest"
DOCS = PROJECT_ROOT / "docs"
SECTION_TITLE = "# Performance of usage_files_ingest"
CHART = "performance_usage_ingest.png"
DATABASE = "bench_usage"
CONN_ID = "bench_usage_store"
SEED = 1
CONSUMERS = 100_000
BAD_SHARE = 0.001
RSS_LIMIT_MB = 300
# Ranges processed at once: two Airflow workers' slots on this 2-core machine.
WORKERS = 2
PAGE_CACHE_BLOCK = 64 << 20


@dataclass(frozen=True, slots=True)
class Drop:
    """One size's files, as a lane process receives them."""

    incoming: Path
    archive: Path
    manifest_path: Path

    @property
    def manifest(self) -> Manifest:
        return Manifest.load(self.manifest_path)

    def paths(self) -> list[Path]:
        return [self.incoming / entry.name for entry in self.manifest.files]


@dataclass(frozen=True, slots=True)
class Summed:
    """What a lane did: the lines it read and what its totals got wrong.

    A lane that worked on a sample says what the sample was; its rate is extrapolated to the drop.
    """

    lines: int
    bytes: int
    # Consumers whose total differs from the manifest's (missing or extra ones included); None:
    # the lane computes no totals to compare (a sample).
    consumers_wrong: int | None
    run_s: float | None = None  # the work's own time, without starting processes and imports
    sample: str | None = None
    sample_s: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


Lane = Callable[[Drop, str, argparse.Namespace], Summed]


# --- the lanes ----------------------------------------------------------------------------------


def ours(batch_mb: int) -> Lane:
    """Our ingest with batches of ``batch_mb`` MiB (ranges of at least that, so a batch can fill)."""

    def lane(drop: Drop, conninfo: str, args: argparse.Namespace) -> Summed:
        return _our_ingest(drop, conninfo, batch_mb=batch_mb, range_mb=max(args.range_mb, batch_mb))

    return lane


def _our_ingest(drop: Drop, conninfo: str, *, batch_mb: int, range_mb: int) -> Summed:
    """The task bodies of ``include.usage_ingest.tasks`` in the DAG's order, without the scheduler.

    Migrate, claim (planning every file) and finish run in this process; the claimed ranges are
    processed by ``WORKERS`` processes at once, each range in its own connection as its mapped
    task would. The bodies find the store as in a task, through the Airflow connection the spec
    names, here defined in the environment (which the spawned workers inherit).
    """
    from airflow.sdk.execution_time.context import OutletEventAccessors

    from include.usage_ingest import tasks

    spec = _our_spec(drop, batch_mb=batch_mb, range_mb=range_mb)
    with airflow_settings(CONN_ID, conninfo), warm_workers(WORKERS, _import_the_pipeline) as (pool, started):
        tasks.migrate(spec)
        ranges = tasks.claim(spec, now=datetime.now(UTC))
        claimed_s = time.perf_counter() - started
        processed = pool.starmap(
            _our_range, [(spec, key["file_id"], key["range_no"]) for key in ranges], chunksize=1
        )
        processed_s = time.perf_counter() - started
        finished = tasks.finish(spec, OutletEventAccessors())
        run_s = time.perf_counter() - started
    _restore(drop)
    manifest = drop.manifest
    lines = sum(entry.lines for entry in manifest.files)
    if finished["lines_applied"] + finished["lines_quarantined"] != lines:
        raise AssertionError(f"the store accounts for {finished['lines']} lines of {lines}")
    return Summed(
        lines=lines,
        bytes=sum(entry.size for entry in manifest.files),
        consumers_wrong=_consumers_wrong(_store_totals(conninfo), manifest),
        run_s=run_s,
        details={
            "batch_mb": batch_mb,
            "range_mb": range_mb,
            "ranges": len(ranges),
            "batches": sum(result["batches"] for result in processed),
            "stale_batches": sum(result["stale_batches"] for result in processed),
            # Sums in SQL come back as Decimal.
            "lines_quarantined": int(finished["lines_quarantined"]),
            "claim_s": round(claimed_s, 3),
            "process_s": round(processed_s - claimed_s, 3),
            "finish_s": round(run_s - processed_s, 3),
            "range_s": [float(result["seconds"]) for result in processed],
            "processes_peak_rss_mb": processes_peak_rss_mb(processed),
        },
    )


def our_reader(drop: Drop, conninfo: str, args: argparse.Namespace) -> Summed:
    """Our planning and parsing alone: the same plans and ranges, the batches summed, not stored."""
    from include.usage_ingest.finished import find_finished
    from include.usage_ingest.planning import plan_file

    spec = _our_spec(drop, batch_mb=args.batch_mb[0], range_mb=args.range_mb)
    with warm_workers(WORKERS, _import_the_pipeline) as (pool, started):
        plans = [
            plan_file(file, range_bytes=spec.range_bytes)
            for file in find_finished(spec.incoming, spec.pattern, settle_seconds=0, now=datetime.now(UTC))
        ]
        planned_s = time.perf_counter() - started
        jobs = [(plan.file.path, byte_range, spec.limits) for plan in plans for byte_range in plan.ranges]
        read = pool.starmap(_read_range, jobs, chunksize=1)
        run_s = time.perf_counter() - started
    consumers, amounts = _sum(
        np.concatenate([part["consumers"] for part in read]),
        np.concatenate([part["amounts"] for part in read]),
    )
    return Summed(
        lines=sum(part["lines"] for part in read),
        bytes=sum(plan.file.size for plan in plans),
        consumers_wrong=_consumers_wrong(
            dict(zip(consumers.tolist(), amounts.tolist(), strict=True)), drop.manifest
        ),
        run_s=run_s,
        details={
            "ranges": len(jobs),
            "batches": sum(part["batches"] for part in read),
            "plan_s": round(planned_s, 3),
            "parse_s": round(run_s - planned_s, 3),
            "processes_peak_rss_mb": processes_peak_rss_mb(read),
        },
    )


# Our line rules, for DuckDB: the line as text (a line break ends it; DuckDB's reader also ends a
# line at a lone CR, the one rule it cannot be told), one trailing CR dropped, exactly one space
# between two runs of digits (no sign, no other byte), then the two ranges. TRY_CAST to HUGEINT:
# a field of more digits than that holds is out of range, and NULL is never summed.
_DUCKDB_OUR_RULES = r"""
SELECT consumer::BIGINT AS consumer, sum(amount)::HUGEINT AS total
FROM (
    SELECT
        TRY_CAST(split_part(line, ' ', 1) AS HUGEINT) AS consumer,
        TRY_CAST(rtrim(split_part(line, ' ', 2), chr(13)) AS HUGEINT) AS amount
    FROM read_csv(
        $paths, columns = {'line': 'VARCHAR'}, header = false, delim = '\x01', quote = '',
        escape = '', auto_detect = false, strict_mode = false, ignore_errors = true, new_line = '\n'
    )
    WHERE regexp_full_match(line, '[0-9]+ [0-9]+\r?')
)
WHERE consumer <= 9223372036854775807 AND amount <= 1000000000000
GROUP BY consumer
"""

_DUCKDB_TYPED_READ = """
SELECT consumer, sum(amount)::HUGEINT AS total
FROM read_csv(
    $paths, columns = {'consumer': 'BIGINT', 'amount': 'BIGINT'}, header = false, delim = ' ',
    quote = '', escape = '', auto_detect = false, strict_mode = false, ignore_errors = true
)
WHERE consumer IS NOT NULL AND amount IS NOT NULL
GROUP BY consumer
"""


def duckdb_our_rules(drop: Drop, conninfo: str, args: argparse.Namespace) -> Summed:
    """DuckDB on every core, told our line rules: the per-consumer totals, nothing stored."""
    return _duckdb(drop, _DUCKDB_OUR_RULES)


def duckdb_typed_read(drop: Drop, conninfo: str, args: argparse.Namespace) -> Summed:
    """DuckDB's plain typed read and ``GROUP BY``: its speed here, our rules not applied."""
    return _duckdb(drop, _DUCKDB_TYPED_READ)


def _duckdb(drop: Drop, query: str) -> Summed:
    import duckdb  # deferred: a development dependency only these lanes need

    manifest = drop.manifest
    started = time.perf_counter()
    with duckdb.connect(config={"threads": os.cpu_count() or 1}) as db:
        # As Python integers (HUGEINT has no NumPy type): compared exactly.
        found = dict(db.execute(query, {"paths": [str(path) for path in drop.paths()]}).fetchall())
    run_s = time.perf_counter() - started
    return Summed(
        lines=sum(entry.lines for entry in manifest.files),
        bytes=sum(entry.size for entry in manifest.files),
        consumers_wrong=_consumers_wrong(found, manifest),
        run_s=run_s,
    )


def seed_way(drop: Drop, conninfo: str, args: argparse.Namespace) -> Summed:
    """The seed's way: a Python loop over the lines, one upsert per line (its ``INSERT … ON
    DUPLICATE KEY UPDATE``, in PostgreSQL's spelling), on the first ``args.seed_sample`` lines of
    the first file. One transaction for the whole sample, in the seed's favour (a commit per
    line would wait for the disk each time); a line that does not parse or is out of range is
    skipped."""
    manifest = drop.manifest
    path = drop.paths()[0]
    with psycopg.connect(conninfo) as conn:
        conn.execute("CREATE TABLE seed_totals (consumer_id bigint PRIMARY KEY, amount bigint NOT NULL)")
        conn.commit()
        read = lines = 0
        started = time.perf_counter()
        with path.open("rb") as source:
            for line in source:
                lines += 1
                read += len(line)
                try:
                    consumer, amount = (int(text) for text in line.split())
                except ValueError:
                    continue
                if not (0 <= consumer <= MAX_CONSUMER and 0 <= amount <= MAX_AMOUNT):
                    continue
                conn.execute(
                    "INSERT INTO seed_totals (consumer_id, amount) VALUES (%s, %s) "
                    "ON CONFLICT (consumer_id) DO UPDATE SET amount = seed_totals.amount + excluded.amount",
                    (consumer, amount),
                )
                if lines >= args.seed_sample:
                    break
        conn.commit()
        sample_s = time.perf_counter() - started
    return Summed(
        lines=lines,
        bytes=read,
        consumers_wrong=None,
        sample=f"the first {lines:,} lines ({read / 1e6:.1f} MB) of {path.name}",
        sample_s=sample_s,
        details={"drop_lines": sum(entry.lines for entry in manifest.files)},
    )


def _our_spec(drop: Drop, *, batch_mb: int, range_mb: int) -> Any:
    from include.usage_ingest.settings import IngestSpec

    return IngestSpec.from_params(
        {
            "incoming": str(drop.incoming),
            "archive": str(drop.archive),
            # The files were written before the run: none is being written now.
            "settle_seconds": 0,
            "batch_mb": batch_mb,
            "range_mb": range_mb,
            "connection": CONN_ID,
        },
        run_id=f"bench-batch-{batch_mb}",
        session_name="bench.usage_ingest",
    )


def _import_the_pipeline() -> None:
    from include.usage_ingest import tasks  # noqa: F401


def _our_range(spec: Any, file_id: int, range_no: int) -> dict[str, Any]:
    from include.usage_ingest import tasks

    return {**tasks.process(spec, file_id, range_no), **this_process()}


def _read_range(path: str, byte_range: Any, limits: Any) -> dict[str, Any]:
    from include.usage_ingest.lines import read_batches

    consumers, amounts, batches, lines = [], [], 0, 0
    started = time.perf_counter()
    for batch in read_batches(
        path, start=byte_range.start, end=byte_range.end, first_line=byte_range.first_line, limits=limits
    ):
        consumers.append(batch.consumers)
        amounts.append(batch.amounts)
        batches += 1
        lines += batch.lines
    summed = _sum(np.concatenate(consumers), np.concatenate(amounts))
    return {
        "consumers": summed[0],
        "amounts": summed[1],
        "batches": batches,
        "lines": lines,
        "seconds": round(time.perf_counter() - started, 3),
        **this_process(),
    }


def _sum(consumers: np.ndarray, amounts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if not len(consumers):
        return consumers.astype(np.int64), amounts.astype(np.int64)
    order = np.argsort(consumers, kind="stable")
    consumers, amounts = consumers[order], amounts[order]
    heads = np.flatnonzero(np.diff(consumers, prepend=consumers[:1] - 1) != 0)
    return consumers[heads], np.add.reduceat(amounts, heads)


def _store_totals(conninfo: str) -> dict[int, int]:
    with psycopg.connect(conninfo) as conn:
        return dict(conn.execute("SELECT consumer_id, amount FROM usage_ingest.consumer_totals").fetchall())


def _consumers_wrong(found: dict[int, int], manifest: Manifest) -> int:
    """Consumers whose total differs from the manifest's, missing and extra ones included."""
    truth = manifest.totals()
    return sum(1 for consumer in found.keys() | truth.keys() if found.get(consumer) != truth.get(consumer))


def _restore(drop: Drop) -> None:
    """Move archived files back into incoming (a rename keeps their mtime and content)."""
    if not drop.archive.exists():
        return
    for path in sorted(drop.archive.rglob("*")):
        if path.is_file():
            target = drop.incoming / path.relative_to(drop.archive)
            target.parent.mkdir(parents=True, exist_ok=True)
            path.rename(target)


OUR_READER = "ours, reading only (no store)"
DUCKDB = "DuckDB, our rules"
DUCKDB_TYPED = "DuckDB, typed read only (our rules not applied)"
SEED_WAY = "seed's way: one upsert per line"


def our_lane_name(batch_mb: int) -> str:
    return f"ours, batch {batch_mb} MiB"


def lanes(batch_mbs: tuple[int, ...]) -> dict[str, Lane]:
    return {
        **{our_lane_name(batch_mb): ours(batch_mb) for batch_mb in batch_mbs},
        OUR_READER: our_reader,
        DUCKDB: duckdb_our_rules,
        DUCKDB_TYPED: duckdb_typed_read,
        SEED_WAY: seed_way,
    }


# --- the run ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    args = _parse_args(argv)
    interrupt_on_sigterm()
    state_dir: Path = args.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    if args.rewrite_docs:
        results = json.loads((state_dir / "results.json").read_text())
        results.update(_judged(results["sizes"], results["batch_mb"]))
    else:
        results = _measure(state_dir, args)
        (state_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(text_tables(results))
    if args.write_docs or args.rewrite_docs:
        write_docs(results, DOCS / "PERFORMANCE.md", DOCS / CHART)
        log.info("wrote the usage_files_ingest section of %s and %s", DOCS / "PERFORMANCE.md", DOCS / CHART)
    print(json.dumps(results))
    return 0


def _judged(points: list[dict[str, Any]], batch_mbs: list[int]) -> dict[str, Any]:
    """The targets, judged on the lane of the DAG's default batch size (else the first measured)."""
    from include.usage_ingest.settings import DEFAULT_BATCH_MB

    judged = DEFAULT_BATCH_MB if DEFAULT_BATCH_MB in batch_mbs else batch_mbs[0]
    return {"default_batch_mb": DEFAULT_BATCH_MB, "targets": targets(points, judged)}


def _measure(state_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    points, machine = measure_sizes(
        state_dir, args.sizes, lambda server, size: _measure_size(server, state_dir, size, args)
    )
    return {
        "sizes": points,
        "batch_mb": list(args.batch_mb),
        **_judged(points, list(args.batch_mb)),
        "machine": machine,
    }


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.usage_ingest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="4 MB in 2 files, batches of 1 MiB, a 2,000-line seed sample"
    )
    parser.add_argument("--sizes", type=sizes_argument, help="comma-separated drop sizes (default 100MB,2GB)")
    parser.add_argument("--files", type=int, default=2, help="files per drop (default %(default)s)")
    parser.add_argument(
        "--batch-mb", type=_numbers, help="our lanes' batch_mb (default 64,256,1024; quick 1)"
    )
    parser.add_argument(
        "--range-mb", type=int, default=256, help="range_mb of our lanes (the DAG's default %(default)s)"
    )
    parser.add_argument(
        "--seed-sample", type=int, help="lines the seed's way runs (default 20000; quick 2000)"
    )
    parser.add_argument(
        "--write-docs",
        action="store_true",
        help="rewrite the usage_files_ingest section of docs/PERFORMANCE.md",
    )
    parser.add_argument(
        "--rewrite-docs",
        action="store_true",
        help="rewrite that section from the last results.json, measuring nothing",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="cluster, written files and results.json (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    args.sizes = args.sizes or ((4_000_000,) if args.quick else (100_000_000, 2_000_000_000))
    args.batch_mb = args.batch_mb or ((1,) if args.quick else (64, 256, 1024))
    args.seed_sample = args.seed_sample or (2_000 if args.quick else 20_000)
    if args.write_docs and args.quick:
        parser.error("--write-docs needs a full run: drop --quick")
    return args


def _numbers(text: str) -> tuple[int, ...]:
    try:
        numbers = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if not numbers or min(numbers) < 1:
        raise argparse.ArgumentTypeError(f"need positive whole numbers, not {text!r}")
    return numbers


def _measure_size(
    server: LocalPostgres, state_dir: Path, size: int, args: argparse.Namespace
) -> dict[str, Any]:
    drop, write_s = _written_files(state_dir, size, args.files)
    manifest = drop.manifest
    measured = {}
    for name in lanes(args.batch_mb):
        measured[name] = _run_lane(server, name, drop, args)
        log.info("  %-48s %s", name, _lane_sentence(measured[name]))
    return {
        "size": size,
        "bytes": sum(entry.size for entry in manifest.files),
        "files": len(manifest.files),
        "lines": sum(entry.lines for entry in manifest.files),
        "bad_lines": sum(entry.lines - entry.applied_lines for entry in manifest.files),
        "consumers": manifest.consumers,
        "write_s": write_s,
        "lanes": measured,
    }


def _written_files(state_dir: Path, size: int, files: int) -> tuple[Drop, float | None]:
    """The files of one size, written now or kept from an earlier run (then ``None`` seconds)."""
    folder = state_dir / f"files-{size}-{files}x-{CONSUMERS}c-seed{SEED}"
    drop = Drop(folder / "incoming", folder / "archive", folder / f"incoming-seed{SEED}-manifest.json")
    _restore(drop)  # an interrupted lane may have left files archived
    if drop.manifest_path.exists() and all(
        (drop.incoming / entry.name).is_file() and (drop.incoming / entry.name).stat().st_size == entry.size
        for entry in drop.manifest.files
    ):
        log.info("reusing the %.0f MB of usage files in %s", size / 1e6, folder)
        return drop, None
    shutil.rmtree(folder, ignore_errors=True)
    log.info("writing %.0f MB of usage files in %d files into %s", size / 1e6, files, folder)
    started = time.perf_counter()
    write_files(
        drop.incoming,
        files=files,
        size_bytes=size // files,
        consumers=CONSUMERS,
        bad_share=BAD_SHARE,
        seed=SEED,
    )
    return drop, round(time.perf_counter() - started, 3)


def _run_lane(server: LocalPostgres, name: str, drop: Drop, args: argparse.Namespace) -> dict[str, Any]:
    """The lane in a fresh ``spawn`` process, on a new database, after a CHECKPOINT, files cached."""
    server.drop_database(DATABASE)
    server.create_database(DATABASE)
    conninfo = server.conninfo(DATABASE)
    for path in drop.paths():
        with path.open("rb", buffering=0) as source:
            while source.read(PAGE_CACHE_BLOCK):
                pass
    checkpoint(conninfo)
    outcome, exitcode = in_fresh_process(_lane_process, name, drop, conninfo, args, process_name=name)
    server.drop_database(DATABASE)
    if "result" not in outcome:  # every lane runs here: a skipped one is a failure too
        why = outcome.get("error") or outcome.get("skipped")
        raise RuntimeError(f"lane {name!r} failed (exit code {exitcode}): {why}")
    return _lane_figures(name, drop, outcome)


def _lane_process(name: str, drop: Drop, conninfo: str, args: argparse.Namespace, sender: Connection) -> None:
    sender.send(lane_outcome(lambda: lanes(args.batch_mb)[name](drop, conninfo, args)))
    sender.close()


def _lane_figures(name: str, drop: Drop, outcome: dict[str, Any]) -> dict[str, Any]:
    summed: Summed = outcome["result"]
    manifest = drop.manifest
    drop_lines = sum(entry.lines for entry in manifest.files)
    drop_bytes = sum(entry.size for entry in manifest.files)
    wall_s = outcome["wall_s"]
    extrapolated = summed.sample is not None
    rate_s = summed.sample_s if extrapolated else summed.run_s or wall_s
    lines_per_s = summed.lines / rate_s if rate_s > 0 else 0.0
    return {
        "name": name,
        "extrapolated": extrapolated,
        "sample": summed.sample,
        "lines": summed.lines,
        "bytes_read": summed.bytes,
        "consumers_wrong": summed.consumers_wrong,
        "wall_s": round(wall_s, 3),
        # The whole drop's time: measured, or the sample's rate applied to every line of the drop.
        "drop_s": round(drop_lines / lines_per_s if extrapolated else rate_s, 3),
        # Starting processes and importing Airflow before the clock started (see warm_workers).
        "start_s": round(wall_s - summed.run_s, 3) if summed.run_s is not None else None,
        "mb_per_s": round(summed.bytes / 1e6 / rate_s, 2) if rate_s > 0 else 0.0,
        "lines_per_s": round(lines_per_s, 1),
        "cpu_s": round(outcome["cpu_s"], 3),
        "children_cpu_s": round(outcome["children_cpu_s"], 3),
        "peak_rss_mb": round(outcome["peak_rss_mb"], 1),
        "children_peak_rss_mb": round(outcome["children_peak_rss_mb"], 1),
        "details": summed.details,
        "drop_bytes": drop_bytes,
    }


# --- what the run found -------------------------------------------------------------------------


def targets(points: list[dict[str, Any]], batch_mb: int) -> list[dict[str, Any]]:
    """The issue's targets beside the measured values, for ours with ``batch_mb``; ``met`` None:
    not measured."""
    found: list[dict[str, Any]] = []

    def add(target: str, measured: str, met: bool | None) -> None:
        found.append({"target": target, "measured": measured, "met": met})

    name = our_lane_name(batch_mb)
    largest, smallest = points[-1], points[0]
    mine = largest["lanes"][name]
    exact = all(point["lanes"][name]["consumers_wrong"] == 0 for point in points)
    add(f"{name}: totals = manifest (exactly once), every size", "yes" if exact else "NO", exact)
    for other, floor, spelled in ((DUCKDB, 0.5, "0.5x " + DUCKDB), (SEED_WAY, 100, "100x the seed's way")):
        ratios = [
            (point, point["lanes"][name]["mb_per_s"] / point["lanes"][other]["mb_per_s"]) for point in points
        ]
        measured = "; ".join(f"{ratio:,.2f}x at {point['bytes'] / 1e6:,.0f} MB" for point, ratio in ratios)
        add(f"{name} >= {spelled} (MB/s), every size", measured, all(ratio >= floor for _, ratio in ratios))
    worst = _peak(mine)
    add(f"peak RSS per process < {RSS_LIMIT_MB} MB", f"{worst:.0f} MB", worst < RSS_LIMIT_MB)
    if len(points) > 1:
        small = smallest["lanes"][name]
        growth = worst / _peak(small)
        add("peak RSS flat: largest <= 1.2x smallest size", f"{growth:.2f}x", growth <= 1.2)
        slope = (mine["drop_s"] / small["drop_s"]) / (largest["bytes"] / smallest["bytes"])
        add("time linear in size: (time ratio) / (size ratio) <= 1.2", f"{slope:.2f}", slope <= 1.2)
    else:
        add("peak RSS flat: largest <= 1.2x smallest size", "not measured", None)
        add("time linear in size: (time ratio) / (size ratio) <= 1.2", "not measured", None)
    return found


def _peak(lane: dict[str, Any]) -> float:
    return max(lane["peak_rss_mb"], lane["children_peak_rss_mb"])


LANE_HEADER = (
    "lane",
    "MB/s",
    "lines/s",
    "drop s",
    "CPU s (children)",
    "peak RSS MB (largest child)",
    "totals",
    "how",
)


def _lane_rows(point: dict[str, Any]) -> list[list[str]]:
    rows = []
    for lane in point["lanes"].values():
        how = f"extrapolated from {lane['sample']}" if lane["extrapolated"] else "measured on every file"
        if (lane.get("start_s") or 0) >= 1:
            how += f", after {lane['start_s']:.0f} s starting processes and imports"
        wrong = lane["consumers_wrong"]
        totals = "-" if wrong is None else ("= manifest" if wrong == 0 else f"{wrong:,} consumers wrong")
        rows.append(
            [
                lane["name"],
                f"{lane['mb_per_s']:,.2f}" if lane["mb_per_s"] < 10 else f"{lane['mb_per_s']:,.1f}",
                f"{lane['lines_per_s']:,.0f}",
                f"{lane['drop_s']:,.1f}",
                f"{lane['cpu_s']:.1f} ({lane['children_cpu_s']:.1f})",
                f"{lane['peak_rss_mb']:.0f} ({lane['children_peak_rss_mb']:.0f})",
                totals,
                how,
            ]
        )
    return rows


def _point_title(point: dict[str, Any]) -> str:
    written = (
        "kept from an earlier run" if point["write_s"] is None else f"written in {point['write_s']:.0f} s"
    )
    return (
        f"{point['bytes'] / 1e6:,.0f} MB in {point['files']} files, {point['lines']:,} lines, "
        f"{point['consumers']:,} consumers, {point['bad_lines']:,} bad lines ({written})"
    )


def _lane_sentence(lane: dict[str, Any]) -> str:
    wrong = lane["consumers_wrong"]
    return (
        f"{lane['mb_per_s']:.2f} MB/s, {lane['lines_per_s']:,.0f} lines/s, drop {lane['drop_s']:.1f} s, "
        f"peak RSS {lane['peak_rss_mb']:.0f} MB (child {lane['children_peak_rss_mb']:.0f} MB)"
        + ("" if wrong is None else f", {wrong} consumers wrong")
    )


def text_tables(results: dict[str, Any]) -> str:
    parts = []
    for point in results["sizes"]:
        parts += [_point_title(point), report._table(LANE_HEADER, _lane_rows(point)), ""]
        parts += [*_where_the_time_goes(point, results), ""]
    parts.append(report._table(report.TARGET_HEADER, report._target_rows(results)))
    return "\n".join(parts)


def _where_the_time_goes(point: dict[str, Any], results: dict[str, Any]) -> list[str]:
    """Each batch size's split of our time and the store's share; the parser's and DuckDB's."""
    reader, duckdb, typed = (point["lanes"][name] for name in (OUR_READER, DUCKDB, DUCKDB_TYPED))
    out = []
    for batch_mb in results["batch_mb"]:
        lane = point["lanes"][our_lane_name(batch_mb)]
        details = lane["details"]
        store_s = lane["drop_s"] - reader["drop_s"]
        peaks = ", ".join(f"{peak:.0f}" for peak in details["processes_peak_rss_mb"])
        out.append(
            f"- **{lane['name']}**: {details['ranges']} range(s) of up to {details['range_mb']} MiB in "
            f"{details['batches']} batch transaction(s) by {WORKERS} processes (peak RSS {peaks} MB); "
            f"claim (planning: sha256, lines, ranges) {details['claim_s']:.1f} s, ranges "
            f"{details['process_s']:.1f} s (a range {min(details['range_s']):.1f}"
            f"–{max(details['range_s']):.1f} s), "
            f"finish {details['finish_s']:.1f} s; the store's share (ours minus reading only) "
            f"{store_s:.1f} s of {lane['drop_s']:.1f} s ({store_s / lane['drop_s']:.0%})."
        )
    details = reader["details"]
    out.append(
        f"- **{OUR_READER}** (batches of {results['batch_mb'][0]} MiB): planning {details['plan_s']:.1f} s, "
        f"parsing {details['parse_s']:.1f} s by {WORKERS} processes (peak RSS "
        f"{', '.join(f'{peak:.0f}' for peak in details['processes_peak_rss_mb'])} MB: a worker's memory is "
        "the process with Airflow and the pipeline imported plus the parser's per-block arrays, the store "
        "adds little)."
    )
    out.append(
        f"- **{DUCKDB}**: {duckdb['drop_s']:.1f} s against {typed['drop_s']:.1f} s for its plain typed read "
        f"of the same files: our rules (a regular expression and string splitting per line) are most of "
        f"its time; it used {duckdb['cpu_s'] / duckdb['drop_s']:.1f} of the {results['machine']['nproc']} "
        "cores on average."
    )
    return out


def markdown(results: dict[str, Any], chart_name: str | None) -> list[str]:
    default = results["default_batch_mb"]
    out = [
        SECTION_TITLE,
        "",
        "Generated by `python -m bench.usage_ingest --write-docs` (`make bench-usage ARGS=--write-docs`); "
        "do not edit by hand. `make bench-usage ARGS=--quick` runs it on 4 MB in about a minute.",
        "",
        f"The same files (`devservices.usage_writer`: {CONSUMERS:,} consumers, {BAD_SHARE:.1%} bad lines of "
        "every kind, some odd good ones: CRLF, leading zeros, the largest id and amount), summed every "
        "way, one lane after the other, each in a fresh process after a `CHECKPOINT`, with the files in "
        "the page cache, into a local PostgreSQL with default durability (fsync on). MB/s are of file "
        "bytes. **ours** is the DAG's task bodies without the scheduler (claim with planning, every "
        f"range by {WORKERS} processes at once as two workers' slots, finish), each batch one transaction "
        "with its checkpoint; its totals in the store are compared consumer by consumer with the "
        "writer's manifest, and every line is accounted for as applied or quarantined. "
        "**DuckDB, our rules** is the reference: DuckDB on every core computing the same totals, told "
        "our line rules in SQL (`regexp_full_match(line, '[0-9]+ [0-9]+\\r?')`, one trailing CR dropped, "
        "`TRY_CAST` to HUGEINT and the two range limits). Its CSV reader also ends a line at a lone CR, "
        "which cannot be switched off, so the writer's few lines with a stray CR inside (`1 2\\r\\r`, "
        "`1 2\\r \\r`) are read as a good line plus an empty one: the consumers it gets wrong are those. "
        "**DuckDB, typed read only** is its plain `read_csv` into two BIGINT columns and `GROUP BY`: its "
        "speed on these files without our rules (it sums `-1 2`, `1 2 3` and amounts above 10^12), "
        "shown for scale, not a correct answer. The seed's way (a Python loop, one upsert per line) runs "
        "on a sample in one transaction (in its favour: a commit per line would wait for the disk each "
        f"time) and is extrapolated. The DAG's default batch is {default} MiB (`batch_mb`).",
        "",
        report.machine_sentence(results["machine"]),
        "",
    ]
    for point in results["sizes"]:
        out += [f"## {_point_title(point)}", "", report._markdown_table(LANE_HEADER, _lane_rows(point)), ""]
        out += [*_where_the_time_goes(point, results), ""]
    out += [
        "## Targets",
        "",
        report._markdown_table(report.TARGET_HEADER, report._target_rows(results)),
        "",
        *_for_scale(results),
        *_batch_size(results),
    ]
    if chart_name:
        out += [f"![MB/s and peak RSS of each lane against the drop's size]({chart_name})", ""]
    return out


def _for_scale(results: dict[str, Any]) -> list[str]:
    """Ours against DuckDB's fastest read, which is not a like-for-like reference: said, not hidden."""
    default = results["default_batch_mb"]
    ours = our_lane_name(default if default in results["batch_mb"] else results["batch_mb"][0])

    def ratios(lane: str) -> str:
        return "; ".join(
            f"{point['lanes'][lane]['mb_per_s'] / point['lanes'][DUCKDB_TYPED]['mb_per_s']:.2f}x at "
            f"{point['bytes'] / 1e6:,.0f} MB"
            for point in results["sizes"]
        )

    return [
        f"**For scale**, against **{DUCKDB_TYPED}**, whose totals are wrong (it sums lines our rules "
        f"quarantine), so it is no target: {ours} is {ratios(ours)}; our parser alone ({OUR_READER}) is "
        f"{ratios(OUR_READER)}. The difference between the two is the store: one transaction per batch "
        "that adds the sums and moves the checkpoint, the price of exactly once.",
        "",
    ]


def _batch_size(results: dict[str, Any]) -> list[str]:
    """What the batch size did on the largest drop, beside the DAG's default."""
    largest = results["sizes"][-1]
    if len(results["batch_mb"]) < 2:
        return []
    reader = largest["lanes"][OUR_READER]
    listed = []
    for batch_mb in results["batch_mb"]:
        lane = largest["lanes"][our_lane_name(batch_mb)]
        listed.append(
            f"{batch_mb} MiB {lane['mb_per_s']:.1f} MB/s ({lane['details']['batches']} batches, the store's "
            f"share {lane['drop_s'] - reader['drop_s']:.1f} s, ranges of {lane['details']['range_mb']} MiB)"
        )
    return [
        f"**Batch size**, at {largest['bytes'] / 1e6:,.0f} MB: {'; '.join(listed)}. Every batch is one "
        "transaction that upserts each of its distinct consumers (a 64 MiB batch of these files holds all "
        "100,000) "
        "into `consumer_totals` and `usage_hourly`, and concurrent batches take turns on those rows: the "
        "store's cost is per batch, not per byte, so fewer, bigger batches win. A batch never spans two "
        "ranges, so batches beyond `range_mb` need bigger ranges, i.e. fewer tasks for the workers to "
        f"share. The DAG's default is {results['default_batch_mb']} MiB; a crash redoes at most one batch.",
        "",
    ]


def write_docs(results: dict[str, Any], document: Path, chart: Path) -> None:
    """Rewrite this pipeline's part of ``document`` (appended when it has none) and its chart."""
    report.write_lanes_chart(
        results["sizes"], chart, rss_limit_mb=RSS_LIMIT_MB, legend_size="x-small", memory_legend=False
    )
    report.write_section(document, markdown(results, chart.name))


if __name__ == "__main__":
    sys.exit(main())
