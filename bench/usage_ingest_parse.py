"""``python -m bench.usage_ingest_parse``: how fast a usage file is planned and parsed, next to DuckDB.

On one file written by ``devservices.usage_writer`` (default 1 GB, 100,000 consumers, 0.1 % bad
lines of every kind), measures, each in a fresh process (so peak RSS is its own):

- ``plan_file``: sha256 + line count + ranges in one read;
- ``read_batches`` over the whole file with the pipeline's default limits (64 MiB, 200,000
  consumers), summing the batches as the store would; its totals must equal the manifest's;
- DuckDB's ``read_csv`` computing the same per-consumer sums (``ignore_errors``), with one thread
  (like one mapped task) and with all cores. DuckDB does not apply our rules (it takes ``-1 2``,
  gives no reason per bad line and no byte offsets to resume from), so its totals are compared
  with the manifest and the number of consumers it gets wrong is printed too.

The file is read once before the clock starts, so every variant reads from the page cache.
Prints one line per variant (seconds, lines/s, MB/s, peak RSS) and a JSON object at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from bench.services import in_fresh_process, peak_rss_kib
from devservices.sizes import parse_size
from devservices.usage_writer import Manifest, write_files

log = logging.getLogger("bench")

DEFAULT_LIMITS = (64 << 20, 200_000)  # the DAG's defaults: batch_mb, max_batch_consumers


def parse_with_read_batches(path: str, size: int, sender: Connection) -> None:
    from include.usage_ingest.lines import read_batches
    from include.usage_ingest.model import BatchLimits

    started = time.perf_counter()
    consumers, amounts, batches, bad = [], [], 0, 0
    for batch in read_batches(path, start=0, end=size, first_line=1, limits=BatchLimits(*DEFAULT_LIMITS)):
        consumers.append(batch.consumers)
        amounts.append(batch.amounts)
        batches += 1
        bad += len(batch.bad_lines)
    seconds = time.perf_counter() - started
    sender.send(
        {
            "seconds": seconds,
            "batches": batches,
            "bad_lines": bad,
            "totals": _sum(np.concatenate(consumers), np.concatenate(amounts)),
            "peak_rss_kib": peak_rss_kib(),
        }
    )


def plan(path: str, sender: Connection) -> None:
    from include.usage_ingest.finished import describe
    from include.usage_ingest.planning import plan_file

    file = describe(Path(path))
    started = time.perf_counter()
    planned = plan_file(file, range_bytes=256 << 20)
    seconds = time.perf_counter() - started
    sender.send({"seconds": seconds, "ranges": len(planned.ranges), "peak_rss_kib": peak_rss_kib()})


def parse_with_duckdb(path: str, threads: int, sender: Connection) -> None:
    import duckdb

    started = time.perf_counter()
    with duckdb.connect(config={"threads": threads}) as db:
        rows = db.execute(
            "SELECT consumer, sum(amount)::HUGEINT AS total FROM read_csv(?, delim=' ', header=false, "
            "quote='', escape='', auto_detect=false, strict_mode=false, ignore_errors=true, "
            "columns={'consumer': 'BIGINT', 'amount': 'BIGINT'}) "
            "WHERE consumer IS NOT NULL AND amount IS NOT NULL GROUP BY consumer",
            [path],
        ).fetchnumpy()
    seconds = time.perf_counter() - started
    sender.send(
        {
            "seconds": seconds,
            "totals": (
                rows["consumer"].astype(np.int64),
                rows["total"].astype(object),
            ),
            "peak_rss_kib": peak_rss_kib(),
        }
    )


def _sum(consumers: np.ndarray, amounts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(consumers, kind="stable")
    consumers, amounts = consumers[order], amounts[order]
    heads = np.flatnonzero(np.diff(consumers, prepend=consumers[:1] - 1) != 0)
    return consumers[heads], np.add.reduceat(amounts, heads)


def _wrong_consumers(totals: tuple[np.ndarray, Any], manifest: Manifest) -> int:
    truth = manifest.totals()
    found = dict(zip(totals[0].tolist(), [int(a) for a in totals[1]], strict=True))
    return sum(1 for consumer in truth.keys() | found.keys() if truth.get(consumer) != found.get(consumer))


def run(size: int, consumers: int, bad_share: float, folder: Path) -> dict[str, Any]:
    started = time.perf_counter()
    manifest = write_files(
        folder / "incoming", files=1, size_bytes=size, consumers=consumers, bad_share=bad_share, seed=1
    )
    written = time.perf_counter() - started
    [entry] = manifest.files
    path = str(folder / "incoming" / entry.name)
    log.info(
        "usage file: %d bytes, %d lines, %d bad, %d consumers; written in %.1f s (%.0f MB/s)",
        entry.size,
        entry.lines,
        entry.lines - entry.applied_lines,
        manifest.consumers,
        written,
        entry.size / written / 1e6,
    )
    with open(path, "rb") as warm:  # into the page cache: measure parsing, not the disk
        while warm.read(64 << 20):
            pass

    results: dict[str, Any] = {
        "file": {"bytes": entry.size, "lines": entry.lines, "consumers": manifest.consumers},
        "writer_seconds": round(written, 2),
    }
    variants: list[tuple[str, Callable[..., None], tuple[Any, ...]]] = [
        ("plan_file", plan, (path,)),
        ("read_batches", parse_with_read_batches, (path, entry.size)),
        ("duckdb_1_thread", parse_with_duckdb, (path, 1)),
        ("duckdb_all_threads", parse_with_duckdb, (path, os.cpu_count() or 1)),
    ]
    for name, target, args in variants:
        outcome, exit_code = in_fresh_process(target, *args, process_name=name)
        if "error" in outcome or exit_code:
            raise RuntimeError(f"{name} failed (exit {exit_code}): {outcome.get('error')}")
        seconds = outcome["seconds"]
        row = {
            "seconds": round(seconds, 2),
            "lines_per_s": round(entry.lines / seconds),
            "mb_per_s": round(entry.size / seconds / 1e6, 1),
            "peak_rss_mib": round(outcome["peak_rss_kib"] / 1024),
        }
        if "totals" in outcome:
            row["consumers_wrong"] = _wrong_consumers(outcome["totals"], manifest)
        results[name] = row
        log.info("%-20s %s", name, row)
    if results["read_batches"]["consumers_wrong"]:
        raise AssertionError("read_batches' totals differ from the manifest's: a parser bug")
    for engine in ("duckdb_1_thread", "duckdb_all_threads"):
        results[f"read_batches_vs_{engine}"] = round(
            results["read_batches"]["seconds"] / results[engine]["seconds"], 2
        )
    return results


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    parser = argparse.ArgumentParser(prog="python -m bench.usage_ingest_parse", description=__doc__)
    parser.add_argument("--size", type=parse_size, default="1GB", help="file size (default 1GB)")
    parser.add_argument("--consumers", type=int, default=100_000)
    parser.add_argument("--bad-share", type=float, default=0.001)
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to write the file (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="usage-parse-") as folder:
        results = run(args.size, args.consumers, args.bad_share, Path(folder))
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
