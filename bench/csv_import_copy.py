"""``python -m bench.csv_import_copy``: how fast the CSV import's writer COPYs, and why text COPY.

The reading side hands the writer rows of PostgreSQL-canonical text. This measures, on one
million rows of 15 columns (integers, bigints, numerics, dates, timestamps with and without
zone, booleans, short and long text), against a throwaway PostgreSQL with default durability:

- ``import_chunk``: the writer as the pipeline runs it (text COPY in savepointed batches, into a
  LOGGED staging table, with the chunk ledger);
- the same into an UNLOGGED staging table: what the crash-safe choice costs;
- a bare text COPY of the same strings (no batches, no savepoints): the writer's overhead;
- a binary COPY of the same values, parsed into Python objects first (which binary needs), and
  without the parse (objects made before the clock starts): binary's best case.

Prints one line per variant (seconds, rows/s, MB/s of CSV text) and a JSON object at the end.
Each measurement starts after a CHECKPOINT.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime
from decimal import Decimal
from itertools import cycle, islice
from pathlib import Path

import psycopg
from psycopg import sql

from bench.services import checkpoint, local_postgres
from include.csv_import.importer import import_chunk
from include.csv_import.ledger import Mode, migrate_schema, record_files, start_run
from include.csv_import.model import Chunk, Column, ColumnType, Dialect, Row, SourceFile
from include.csv_import.table import TableName, create_staging, prepare_target
from include.csv_import.warehouse import staging_table

log = logging.getLogger("bench")

COLUMNS = (
    Column("certificate_id", "certificate_id", ColumnType.BIGINT),
    Column("building_id", "building_id", ColumnType.INTEGER),
    Column("address", "address", ColumnType.TEXT),
    Column("postcode", "postcode", ColumnType.TEXT),
    Column("latitude", "latitude", ColumnType.NUMERIC),
    Column("longitude", "longitude", ColumnType.NUMERIC),
    Column("rating", "rating", ColumnType.TEXT),
    Column("score", "score", ColumnType.INTEGER),
    Column("floor_area", "floor_area", ColumnType.NUMERIC),
    Column("annual_cost", "annual_cost", ColumnType.NUMERIC),
    Column("inspected", "inspected", ColumnType.DATE),
    Column("lodged_at", "lodged_at", ColumnType.TIMESTAMPTZ),
    Column("valid_until", "valid_until", ColumnType.TIMESTAMP),
    Column("is_domestic", "is_domestic", ColumnType.BOOLEAN),
    Column("notes", "notes", ColumnType.TEXT),
)
TYPES = tuple(c.type.value for c in COLUMNS)
POOL = 10_000


def text_values(i: int) -> tuple[str | None, ...]:
    """One record as the reader hands it over: canonical text, a NULL now and then."""
    return (
        str(10_000_000_000 + i),
        str(i % 2_000_000),
        f"{i % 997} Station Road, Flat {i % 31}",
        f"AB{i % 90 + 10} {i % 9}CD",
        f"{51 + (i % 1000) / 1000:.6f}",
        f"{-1 + (i % 1000) / 1000:.6f}",
        "ABCDEFG"[i % 7],
        str(i % 100),
        f"{50 + i % 300}.{i % 100:02d}",
        f"{400 + i % 2000}.{i % 100:02d}",
        f"20{10 + i % 15}-{1 + i % 12:02d}-{1 + i % 28:02d}",
        f"2024-{1 + i % 12:02d}-{1 + i % 28:02d} {i % 24:02d}:{i % 60:02d}:00+00:00",
        f"2034-{1 + i % 12:02d}-{1 + i % 28:02d} 00:00:00",
        "true" if i % 3 else "false",
        None if i % 5 else "Cavity wall insulation recommended; loft insulation 270 mm, " * 2,
    )


def parsed(values: tuple[str | None, ...]) -> tuple[object, ...]:
    """What a binary COPY needs instead: Python objects of each column's type."""
    parsers: tuple[Callable[[str], object], ...] = (
        int,
        int,
        str,
        str,
        Decimal,
        Decimal,
        str,
        int,
        Decimal,
        Decimal,
        date.fromisoformat,
        datetime.fromisoformat,
        datetime.fromisoformat,
        lambda v: v == "true",
        str,
    )
    return tuple(None if v is None else p(v) for p, v in zip(parsers, values, strict=True))


def csv_bytes(rows: int) -> int:
    pool = [text_values(i) for i in range(POOL)]
    per_pool = sum(sum(len(v or "") for v in values) + len(values) for values in pool)
    return per_pool * rows // POOL


def measure(label: str, rows: int, nbytes: int, body: Callable[[], None], conninfo: str) -> dict[str, object]:
    checkpoint(conninfo)
    started, cpu = time.perf_counter(), time.process_time()
    body()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    result = {
        "variant": label,
        "rows": rows,
        "seconds": round(seconds, 2),
        # The client's own CPU: what the writer costs the task, apart from the server's work.
        "client_cpu_s": round(cpu, 2),
        "rows_per_s": round(rows / seconds),
        "mb_per_s": round(nbytes / seconds / 1e6, 1),
    }
    log.info(
        "%-44s %6.2f s (client CPU %5.2f s) %9d rows/s %6.1f MB/s",
        label,
        seconds,
        cpu,
        result["rows_per_s"],
        result["mb_per_s"],
    )
    return result


def run(conninfo: str, rows: int) -> list[dict[str, object]]:
    nbytes = csv_bytes(rows)
    pool = [text_values(i) for i in range(POOL)]
    objects = [parsed(v) for v in pool]
    # Made before the clock starts, as the reader makes them: the writer's cost alone is timed.
    row_pool = [Row(line, values) for line, values in enumerate(pool, start=2)]
    results = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        migrate_schema(conn)
        conn.execute("CREATE SCHEMA IF NOT EXISTS bench")
        bare = TableName("bench", "bare")
        prepare_target(conn, bare, COLUMNS)
        columns = sql.SQL(", ").join(sql.Identifier(c.name) for c in COLUMNS)
        copy_text = sql.SQL("COPY {} ({}) FROM STDIN").format(bare.identifier, columns)
        copy_binary = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(bare.identifier, columns)

        def bare_text() -> None:
            with conn.transaction(), conn.cursor().copy(copy_text) as copy:
                for values in islice(cycle(pool), rows):
                    copy.write_row(values)

        def bare_binary(source: Iterator[tuple[object, ...]]) -> None:
            with conn.transaction(), conn.cursor().copy(copy_binary) as copy:
                copy.set_types(TYPES)
                for values in source:
                    copy.write_row(values)

        def writer(unlogged: bool) -> Callable[[], None]:
            target = TableName("bench", f"certificates_{'unlogged' if unlogged else 'logged'}")
            run_id = start_run(conn, dag_run_id=target.name, target=target, mode=Mode.REPLACE, source="x").id
            file = SourceFile(f"file:///bench/{target.name}.csv", None, nbytes, "1")
            record_files(conn, run_id, [(file, Dialect(), [c.name for c in COLUMNS])])
            prepare_target(conn, target, COLUMNS)
            create_staging(conn, run_id, target)
            if unlogged:
                conn.execute(sql.SQL("ALTER TABLE {} SET UNLOGGED").format(staging_table(run_id)))
            chunk = Chunk(file, 0, 0, None, 2)
            return lambda: import_chunk(conn, run_id, chunk, islice(cycle(row_pool), rows))

        # Not timed: a new cluster creates its WAL segments as it first writes, which would
        # slow down whichever variant came first.
        bare_text()
        conn.execute(sql.SQL("TRUNCATE {}").format(bare.identifier))
        variants: list[tuple[str, Callable[[], None]]] = [
            ("import_chunk, text COPY, LOGGED staging", writer(unlogged=False)),
            ("import_chunk, text COPY, UNLOGGED staging", writer(unlogged=True)),
            ("bare text COPY (no batches, no ledger)", bare_text),
            (
                "binary COPY, values parsed from text",
                lambda: bare_binary(parsed(v) for v in islice(cycle(pool), rows)),
            ),
            ("binary COPY, objects ready (best case)", lambda: bare_binary(islice(cycle(objects), rows))),
        ]
        for label, body in variants:
            results.append(measure(label, rows, nbytes, body, conninfo))
            conn.execute(sql.SQL("TRUNCATE {}").format(bare.identifier))
    return results


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="bench-csv-copy-") as state,
        local_postgres(Path(state)) as server,
    ):
        results = run(server.conninfo(), args.rows)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
