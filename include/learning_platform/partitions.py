"""The landing and staging tables are partitioned by UTC day; their writers create a day's partitions.

Why by day: retention removes a published day from the landing and the staging by dropping its
partitions (``landing_retention``), at the same small cost whatever the day's size and with no
dead rows left for VACUUM. Each partition holds one UTC day of ``window_start``,
``<table>_YYYYMMDD`` from the day's 00:00 UTC to the next day's (migration 0007). A run's windows
lie within its interval, so a window starting at midnight is the next day's first, never the
previous day's last.

How writers create them, each for a reason:

- ``CREATE TABLE ... (LIKE parent)`` then ``ATTACH PARTITION``, rather than ``CREATE TABLE ...
  PARTITION OF``: attaching locks the parent in SHARE UPDATE EXCLUSIVE mode, which lets other days'
  runs go on reading and writing it; ``PARTITION OF`` takes ACCESS EXCLUSIVE, which waits for every
  one of them (a day's extract holds the landing for minutes) and stalls everyone queued behind it.
- in a short transaction of their own, committed before the day is written, so that the lock
  is not held for the writer's whole transaction (``create_day_partitions``);
- under one advisory lock: two runs of the same day would otherwise both find the partition
  missing, and one of them fail on the other's table name; creators lock the parents in one order
  (staging before landing, the order validate uses them in), so they cannot deadlock;
- checked again inside the writer's transaction, under its day lock
  (``require_day_partitions``): retention may drop an old published day between the two
  transactions when that day is being run again. Normally that check only reads the catalog.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import psycopg
from psycopg import sql

from include.common.intervals import Interval
from include.common.postgres import lock_resource
from include.learning_platform.warehouse import SCHEMA
from include.learning_platform.warehouse import sql as statement

LANDING = ("raw_attempts",)
STAGING = ("staged_attempts", "staged_rejections")
# Every partitioned table, in the order its users lock them: validate writes the staging, then
# reads the landing; load reads the staging. Creators and retention take them in this order too.
PARTITIONED = (*STAGING, *LANDING)

_NAME = re.compile(r"^(?P<table>[a-z_]+)_(?P<day>\d{8})$")


@dataclass(frozen=True, slots=True)
class DayPartition:
    table: str  # the partitioned table
    name: str
    day: date
    bytes: int  # table, indexes and TOAST


def partition_name(table: str, day: date) -> str:
    return f"{table}_{day:%Y%m%d}"


def days_of(interval: Interval) -> list[date]:
    """The UTC days ``interval`` has instants in (a day's interval: that one day)."""
    first = interval.start.astimezone(UTC).date()
    last = (interval.end.astimezone(UTC) - timedelta(microseconds=1)).date()
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), tzinfo=UTC)
    return start, start + timedelta(days=1)


def create_day_partitions(conn: psycopg.Connection, tables: Iterable[str], interval: Interval) -> list[str]:
    """Create the partitions ``interval`` needs in ``tables``, in a transaction of their own.

    Returns the partitions created now (none when they all exist).
    """
    with conn.transaction(), conn.cursor() as cursor:
        return require_day_partitions(cursor, tables, interval)


def require_day_partitions(cursor: psycopg.Cursor, tables: Iterable[str], interval: Interval) -> list[str]:
    """Create, in the current transaction, those of the partitions ``interval`` needs that are missing."""
    wanted = [(table, day) for table in _in_lock_order(tables) for day in days_of(interval)]
    if not _missing(cursor, wanted):
        return []
    lock_resource(cursor, f"{SCHEMA}.partitions")
    created = []
    for table, day in _missing(cursor, wanted):  # again: another run may have created them meanwhile
        name = partition_name(table, day)
        start, end = day_bounds(day)
        parent = sql.Identifier(SCHEMA, table)
        partition = sql.Identifier(SCHEMA, name)
        create = sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        cursor.execute(create.format(partition, parent))
        attach = sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})")
        cursor.execute(attach.format(parent, partition, sql.Literal(start), sql.Literal(end)))
        created.append(name)
    return created


def day_partitions(cursor: psycopg.Cursor) -> dict[date, list[DayPartition]]:
    """Every day partition of the landing and staging tables, by day, each day's in lock order."""
    rows = cursor.execute(statement("select_day_partitions"), {"tables": list(PARTITIONED)}).fetchall()
    found: dict[date, list[DayPartition]] = {}
    for table, name, size in rows:
        match = _NAME.match(name)
        if match is None or match["table"] != table:
            continue  # not one of ours: left alone
        day = datetime.strptime(match["day"], "%Y%m%d").date()  # noqa: DTZ007 - a date, no time zone
        found.setdefault(day, []).append(DayPartition(table, name, day, size))
    for partitions in found.values():
        partitions.sort(key=lambda partition: PARTITIONED.index(partition.table))
    return found


def drop_partitions(cursor: psycopg.Cursor, partitions: Iterable[DayPartition]) -> None:
    """Drop partitions in the current transaction, in lock order (each locks its parent)."""
    for partition in sorted(partitions, key=lambda partition: PARTITIONED.index(partition.table)):
        cursor.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(SCHEMA, partition.name)))


def _missing(cursor: psycopg.Cursor, wanted: list[tuple[str, date]]) -> list[tuple[str, date]]:
    rows = cursor.execute(statement("select_partition_names"), {"tables": list(PARTITIONED)}).fetchall()
    existing = {name for (name,) in rows}
    return [(table, day) for table, day in wanted if partition_name(table, day) not in existing]


def _in_lock_order(tables: Iterable[str]) -> Iterator[str]:
    chosen = set(tables)
    unknown = chosen - set(PARTITIONED)
    if unknown:
        raise ValueError(f"not partitioned by day: {sorted(unknown)}")
    return (table for table in PARTITIONED if table in chosen)
