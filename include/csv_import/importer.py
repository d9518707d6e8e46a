"""Import one chunk into its run's staging table: exactly once, and every line accounted for.

A chunk's rows, its rejects and its chunk-ledger row commit in one transaction. A retry of the
chunk therefore finds either nothing of the previous attempt (it died: the transaction rolled
back) or the chunk done (it is skipped); a chunk of a file that changed since it was imported is
deleted by its own key (its file and the lines the ledger recorded) and imported again.

Two kinds of input, each COPYed in statements and savepoints of its own:

* **Plain records** (:class:`~include.csv_import.plain.PlainRecords`, nearly every record of a
  real drop): a block of the file's own bytes, already proven to be CSV whose every value is in
  its column's canonical spelling. They go to ``COPY … (FORMAT csv, FORCE_NULL …)`` with the
  lineage put in front, and PostgreSQL parses them once. If it refuses a statement's blocks (a
  date such as ``2023-02-30`` has the right shape), their records are read again by the
  careful reader and go the second way, so that the refused value costs its line, not a block.
* **Rows** from the careful reader: every value checked against its column's type with the
  predicates inference used, and written the way PostgreSQL reads it. PostgreSQL stays the
  final judge, as the target's types win over inference's and Python's checks can miss a value
  (an out-of-range date, a number too large for the target's column). A value it refuses costs
  one line, never the file: rows stream into COPY in batches of at most ``BATCH_ROWS``, each in
  a savepoint, and a batch is kept in memory until PostgreSQL has taken it. When it refuses
  one, the batch is sent again: COPY's error names the refused row and column, the rows before
  it go in, that row becomes a reject with PostgreSQL's message, and the rest goes on (in
  smaller parts while refusals continue). The price is nothing when nothing is refused, and a
  few round trips per refused value otherwise.

  COPY's text format, not binary: the values arrive as PostgreSQL's canonical text, and binary
  would need each parsed into a Python object first, only for psycopg to encode it again.
  Measured by ``python -m bench.csv_import_copy`` (1M rows of 15 columns, 178 MB of CSV text):
  a bare text COPY of the strings took 1.8 s of client CPU (280k rows/s), binary 13.5 s with
  the parsing (70k rows/s) and still 8 s with the objects made beforehand; this writer
  (batches, savepoints, lineage, ledger) 3.8 s (160k rows/s into a logged staging table).

Memory: one block of plain records, or one batch of rows (bounded in rows and in characters),
and one batch of rejects.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

from include.csv_import.identifiers import LINEAGE_COLUMNS
from include.csv_import.model import RAW_TEXT_LIMIT, Chunk, Reject, RejectReason, Row
from include.csv_import.plain import PlainRecords
from include.csv_import.warehouse import sql as query
from include.csv_import.warehouse import staging_table

log = logging.getLogger(__name__)

BATCH_ROWS = 20_000
BATCH_CHARS = 16 * 1024 * 1024
REJECT_BATCH = 5_000
# Blocks of plain records sent in one COPY at most (the bytes held to read again if refused).
# 8 MiB: as fast as 16 at 2 GB (bench, paired rounds), with 17 MB less peak memory per process.
PLAIN_COPY_BYTES = 8 * 1024 * 1024

# What PostgreSQL says about a value it will not store: class 22 (data exception: syntax, range,
# encoding) and a NULL in a NOT NULL column of the target.
_REFUSALS = (psycopg.errors.DataError, psycopg.errors.NotNullViolation)
_COPY_POSITION = re.compile(r"COPY [^,]+, line (\d+)(?:, column (.*))?", re.DOTALL)


class ChunkNotInRun(LookupError):
    """The chunk's file is not a file of the run: the plan and the run disagree."""


@dataclass(frozen=True, slots=True)
class ChunkResult:
    rows: int
    # Lines (or the file) not imported: those the reader rejected plus those PostgreSQL refused.
    rejects: int
    # Of the rejects, those PostgreSQL refused.
    refused: int
    # The chunk was already imported by this run (an earlier attempt): nothing was read.
    skipped: bool
    # Of the rows, those COPYed as plain records (their own bytes), not row by row.
    plain: int = 0


def import_chunk(
    conn: psycopg.Connection, run_id: int, chunk: Chunk, items: Iterable[Row | Reject | PlainRecords]
) -> ChunkResult:
    """Stage ``items`` (the chunk's rows, rejects and plain records) for ``run_id``, once.

    ``items`` is consumed only when the chunk is not done yet: pass a generator that opens the
    file lazily, and a skipped chunk costs no read.
    """
    key = {"run_id": run_id, "number": chunk.number}
    with conn.transaction(), conn.cursor() as cursor:
        found = cursor.execute(
            query("select_chunk_file"), {"run_id": run_id, "url": chunk.file.url, "member": chunk.file.member}
        ).fetchone()
        if found is None:
            raise ChunkNotInRun(
                f"{chunk.file.name} is not a file of csv_import run {run_id}: record the run's files "
                "(ledger.record_files) before importing its chunks"
            )
        file_id, columns, delimiter = found
        key["file_id"] = file_id
        cursor.execute(
            query("insert_chunk"),
            {**key, "start": chunk.start, "end": chunk.end, "first_line": chunk.first_line},
        )
        done, fingerprint, first_line, last_line, rows, rejects = cursor.execute(
            query("select_chunk_for_update"), key
        ).fetchone()
        if done and fingerprint == chunk.file.fingerprint:
            log.info("%s chunk %d: already imported by this run, skipped", chunk.file.name, chunk.number)
            return ChunkResult(rows, rejects, 0, skipped=True)
        if done:
            # The file changed since this chunk was imported: its old rows go, by their own key.
            cursor.execute(
                sql.SQL(
                    "DELETE FROM {} WHERE _source_file_id = %(file_id)s"
                    " AND _source_line BETWEEN %(first_line)s AND %(last_line)s"
                ).format(staging_table(run_id)),
                {"file_id": file_id, "first_line": first_line, "last_line": last_line},
            )
            replaced = cursor.rowcount
            cursor.execute(query("delete_chunk_rejects"), key)
            log.info(
                "%s chunk %d: the file changed since it was imported; its %d staged row(s) go",
                chunk.file.name,
                chunk.number,
                replaced,
            )
        writer = _ChunkWriter(cursor, file_id, tuple(columns), delimiter, key)
        result = writer.write(items)
        cursor.execute(
            query("finish_chunk"),
            {
                **key,
                "start": chunk.start,
                "end": chunk.end,
                "first_line": chunk.first_line,
                "fingerprint": chunk.file.fingerprint,
                "rows": result.rows,
                "rejects": result.rejects,
                "last_line": writer.last_line,
            },
        )
    log.info(
        "%s chunk %d: %d row(s) staged (%d as plain records), %d rejected (%d refused by PostgreSQL)",
        chunk.file.name,
        chunk.number,
        result.rows,
        result.plain,
        result.rejects,
        result.refused,
    )
    return result


class _ChunkWriter:
    """Batches a chunk's rows into savepointed COPYs and its rejects into the reject table."""

    def __init__(
        self,
        cursor: psycopg.Cursor,
        file_id: int,
        columns: tuple[str, ...],
        delimiter: str,
        key: dict[str, int],
    ) -> None:
        self._cursor = cursor
        self._file_id = file_id
        self._columns = columns
        self._delimiter = delimiter
        self._key = key
        self._rejects: list[Reject] = []
        self._rejected = 0
        self._plain_rows = 0
        self.last_line: int | None = None

    def write(self, items: Iterable[Row | Reject | PlainRecords]) -> ChunkResult:
        staged, refused = self._write(items)
        return ChunkResult(staged, self._rejected + refused, refused, skipped=False, plain=self._plain_rows)

    def _write(self, items: Iterable[Row | Reject | PlainRecords]) -> tuple[int, int]:
        """Stage everything ``items`` gives; returns (rows staged, rows PostgreSQL refused)."""
        source = _Items(items)
        staged = refused = 0
        while not source.exhausted():
            batch: list[Row] = []
            # Rows stream into COPY as they are read, so that PostgreSQL parses one while the
            # reader makes the next; the batch is kept only to send it again if it is refused.
            feed = self._feed(source, batch)
            try:
                self._copy(feed)
            except _REFUSALS:
                for _ in feed:  # a refusal found by psycopg itself stops the batch early
                    pass
                staged_now, refused_now = self._stage(batch)
                staged, refused = staged + staged_now, refused + refused_now
            else:
                staged += len(batch)
            self._flush_rejects()
            if (first := source.next_if(PlainRecords)) is not None:
                staged_now, refused_now = self._copy_plain(first, source)
                staged, refused = staged + staged_now, refused + refused_now
        return staged, refused

    def _feed(self, source: _Items, batch: list[Row]) -> Iterator[Row]:
        """The next batch's rows from ``source``; its rejects are kept aside for the reject table.

        The batch ends early at a block of plain records, which stays next in ``source``: it is
        COPYed on its own, in CSV.
        """
        # Runs once per line of the file: kept to what every line must cost.
        width = len(self._columns)
        chars = 0
        for item in source:
            if type(item) is not Row:
                if type(item) is PlainRecords:
                    source.put_back(item)
                    return
                self._rejected += 1
                self._rejects.append(item)
                if item.line is not None and (self.last_line is None or item.line > self.last_line):
                    self.last_line = item.line
                if len(self._rejects) >= REJECT_BATCH:
                    return
                continue
            values = item.values
            if len(values) != width:
                raise ValueError(
                    f"line {item.line}: {len(values)} value(s) for the file's {width} column(s); "
                    "the reader must reject such a line, not pass it on"
                )
            if self.last_line is None or item.line > self.last_line:
                self.last_line = item.line
            batch.append(item)
            yield item
            chars += sum(map(len, filter(None, values)))
            if len(batch) >= BATCH_ROWS or chars >= BATCH_CHARS:
                return

    def _copy_plain(self, first: PlainRecords, source: _Items) -> tuple[int, int]:
        """COPY ``first`` and the blocks of plain records right after it, as they are, in one statement.

        The next block is read and checked while PostgreSQL parses the last one (psycopg's
        queued writer sends from a thread of its own), so the reader's CPU and the server's
        overlap. At most ``PLAIN_COPY_BYTES`` of blocks are held, for the one thing they are
        kept for: if PostgreSQL refuses a value, every record of the statement is read again
        carefully, so that the refused value costs its own line only.
        """
        format = first.format
        columns = (*LINEAGE_COLUMNS, *self._columns)
        statement = sql.SQL(
            "COPY {} ({}) FROM STDIN (FORMAT csv, DELIMITER {}, QUOTE {}, ENCODING {}, FORCE_NULL ({}))"
        ).format(
            staging_table(self._key["run_id"]),
            sql.SQL(", ").join(sql.Identifier(name) for name in columns),
            sql.Literal(format.delimiter),
            sql.Literal(format.quote),
            sql.Literal(format.encoding),
            sql.SQL(", ").join(sql.Identifier(name) for name in self._columns),
        )
        blocks = [first]
        try:
            with (
                self._cursor.connection.transaction(),
                self._cursor.copy(statement, writer=QueuedLibpqWriter(self._cursor)) as copy,
            ):
                copy.write(first.payload(self._file_id))
                held = len(first.data)
                while held < PLAIN_COPY_BYTES and (block := source.next_if(PlainRecords)) is not None:
                    copy.write(block.payload(self._file_id))
                    blocks.append(block)
                    held += len(block.data)
        except _REFUSALS as error:
            log.info(
                "PostgreSQL refused a value among lines %d to %d (%s): they are read again one by one",
                int(first.first_lines[0]),
                blocks[-1].last_line,
                error.diag.message_primary,
            )
            return self._write(itertools.chain.from_iterable(block.careful() for block in blocks))
        rows = sum(block.rows for block in blocks)
        if self.last_line is None or blocks[-1].last_line > self.last_line:
            self.last_line = blocks[-1].last_line
        self._plain_rows += rows
        return rows, 0

    def _stage(self, rows: list[Row]) -> tuple[int, int]:
        """COPY ``rows``; every row PostgreSQL refuses becomes a reject. Returns (staged, refused)."""
        staged = refused = 0
        start, window = 0, len(rows)
        while start < len(rows):
            part = rows[start : start + window]
            try:
                self._copy(part)
            except _REFUSALS as error:
                position, column = self._refused_position(error, len(part))
                if position is None:
                    if len(part) > 1:
                        # COPY did not say where: halve until the refused row is alone.
                        window = max(1, len(part) // 2)
                        continue
                    position = 1
                if position > 1:
                    # Everything before the refused row was accepted: send it again on its own.
                    self._copy(part[: position - 1])
                    staged += position - 1
                self._reject(self._refusal(part[position - 1], column or error.diag.column_name, error))
                refused += 1
                start += position
                window = max(1, window // 2)
            else:
                staged += len(part)
                start += len(part)
                window = min(len(rows), window * 2)
        return staged, refused

    def _copy(self, rows: Iterable[Row]) -> None:
        rows = iter(rows)
        first = next(rows, None)
        if first is None:
            return  # no COPY (nor savepoint) for a batch that a block of plain records ended at once
        rows = itertools.chain((first,), rows)
        lineage = self._file_id
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            staging_table(self._key["run_id"]),
            sql.SQL(", ").join(sql.Identifier(name) for name in (*self._columns, *LINEAGE_COLUMNS)),
        )
        with self._cursor.connection.transaction(), self._cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row((*row.values, lineage, row.line))

    def _refused_position(self, error: psycopg.Error, rows: int) -> tuple[int | None, str | None]:
        """The 1-based row of the COPY that PostgreSQL refused, and its column, from COPY's context."""
        match = _COPY_POSITION.search(error.diag.context or "")
        if match is None or not 1 <= int(match.group(1)) <= rows:
            return None, None
        column = None
        if match.group(2) is not None:
            # The context reads `column <name>: "<value>"`; a name may itself hold ": ".
            for name in sorted((*self._columns, *LINEAGE_COLUMNS), key=len, reverse=True):
                if match.group(2) == name or match.group(2).startswith(name + ":"):
                    column = name
                    break
        return int(match.group(1)), column

    def _refusal(self, row: Row, column: str | None, error: psycopg.Error) -> Reject:
        message = error.diag.message_primary or str(error).splitlines()[0]
        return Reject(
            line=row.line,
            reason=RejectReason.TYPE_MISMATCH,
            column=column,
            raw=self._raw(row),
            detail=f"PostgreSQL refused the value: {message}",
        )

    def _raw(self, row: Row) -> str:
        # The line as it would be written again: what a person needs to find and read it.
        text = io.StringIO()
        csv.writer(text, delimiter=self._delimiter, lineterminator="").writerow(
            ["" if v is None else v for v in row.values]
        )
        return text.getvalue()[:RAW_TEXT_LIMIT]

    def _reject(self, reject: Reject) -> None:
        # Called between COPYs only: the reject table's COPY cannot run inside the rows' COPY.
        self._rejects.append(reject)
        if len(self._rejects) >= REJECT_BATCH:
            self._flush_rejects()

    def _flush_rejects(self) -> None:
        if not self._rejects:
            return
        run_id, file_id, number = self._key["run_id"], self._key["file_id"], self._key["number"]
        with self._cursor.copy(query("copy_rejects")) as copy:
            for r in self._rejects:
                copy.write_row(
                    (
                        run_id,
                        file_id,
                        number,
                        r.line,
                        r.column,
                        r.reason.value,
                        _text(r.raw)[:RAW_TEXT_LIMIT],
                        _text(r.detail),
                    )
                )
        self._rejects.clear()


class _Items:
    """The items of a chunk, with one look ahead: an item taken can be put back, to come next."""

    def __init__(self, items: Iterable[Row | Reject | PlainRecords]) -> None:
        self._items = iter(items)
        self._next: list[Row | Reject | PlainRecords] = []

    def __iter__(self) -> _Items:
        return self

    def __next__(self) -> Row | Reject | PlainRecords:
        return self._next.pop() if self._next else next(self._items)

    def put_back(self, item: Row | Reject | PlainRecords) -> None:
        self._next.append(item)

    def next_if(self, kind: type[PlainRecords]) -> PlainRecords | None:
        """The next item if it is a ``kind``; otherwise None, and the item stays next."""
        item = next(self, None)
        if item is None or type(item) is kind:
            return item
        self.put_back(item)
        return None

    def exhausted(self) -> bool:
        """Whether no item is left (reading the next one if need be, which then stays next)."""
        if self._next:
            return False
        for item in self._items:
            self.put_back(item)
            return False
        return True


def _text(value: str) -> str:
    # PostgreSQL text cannot hold NUL; a reject keeps the rest of what it says.
    return value.replace("\x00", "\\x00")
