"""Retention of the landing and staging tables: an old day's partitions go once load published it.

The landing keeps every day's API answer verbatim (about 540 MB a day at 1M attempts) and the
staging every verdict on it. Both matter only until the day is published: then ``attempts``, the
quarantine (which keeps each rejected record verbatim) and the figures hold what a reader needs,
and a rerun of the day fetches it again. So the landing and staging of a day older than the
retention period go, by dropping the day's partitions (``partitions``): the same small cost
whatever the day's size, and no dead rows for VACUUM. ``attempts``, the quarantine, the figures
and ``load_batches`` are never touched.

**Published**, precisely: load has published a day when ``load_batches`` holds at least one of
its intervals, and every landing of the day (each ``landing_batches`` row overlapping it) is the
very landing load published for that interval (``load_batches.landing_id``, written by load in
the transaction that published it). A day landed again since, a day validated but never loaded,
a day whose landing's verdict failed to load, a day landed before the stage ledgers existed and
never loaded: all keep their landing, however old. The day's ``landing_batches`` and
``staging_batches`` rows go with its partitions, since they describe rows no longer there
(a later rerun of validate or load alone then says to run extract first).

**Safety under concurrency.** Each day is decided and dropped in one transaction, under the same
per-day lock the pipeline's writers take, so a run of that day cannot land it again between the
decision and the drop; a retry after a kill finds the days already dropped gone and goes on with
the rest. Dropping a partition locks its parent table exclusively, so it waits for other days'
runs using the table and makes new ones wait behind it: the wait is bounded (``LOCK_TIMEOUT``),
and a day that could not be locked in time is left for the task's retry, reported as busy.
(``DETACH PARTITION CONCURRENTLY`` would not lock the parent exclusively, but it cannot run in a
transaction: a kill between its steps would leave half-detached tables for the next run to
recognise and finish.)

**Dry run**: the same decisions, under the same locks, dropping nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import psycopg

from include.common.intervals import Interval
from include.learning_platform.partitions import DayPartition, day_partitions, drop_partitions
from include.learning_platform.warehouse import interval_params, lock_day, sql

log = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 14
# How long a day's drop may wait for the tables' locks (and for a run of that day) before the day
# is left for the retry: while it waits, new queries of the table wait behind it.
LOCK_TIMEOUT = "5s"


@dataclass(slots=True)
class LandingPurge:
    """The days whose landing and staging a purge dropped (or, in a dry run, would drop)."""

    oldest_kept_day: date
    dry_run: bool
    dropped: list[date] = field(default_factory=list)
    bytes: int = 0
    unpublished: list[date] = field(default_factory=list)  # old, but not published: kept
    busy: list[date] = field(default_factory=list)  # could not be locked in time: left for a retry

    def summary(self) -> dict[str, Any]:
        """Counts for XCom and the task log; the days that need an operator are named."""
        return {
            "oldest_kept_day": self.oldest_kept_day.isoformat(),
            "dry_run": self.dry_run,
            "days": len(self.dropped),
            "first_day": min(self.dropped).isoformat() if self.dropped else None,
            "last_day": max(self.dropped).isoformat() if self.dropped else None,
            "bytes": self.bytes,
            "unpublished_days": [day.isoformat() for day in self.unpublished],
            "busy_days": [day.isoformat() for day in self.busy],
        }


def purge_old_landing(conn: psycopg.Connection, oldest_kept_day: date, *, dry_run: bool) -> LandingPurge:
    """Drop the landing and staging partitions of published days before ``oldest_kept_day``."""
    purge = LandingPurge(oldest_kept_day=oldest_kept_day, dry_run=dry_run)
    with conn.transaction(), conn.cursor() as cursor:
        partitions = day_partitions(cursor)
    for day in sorted(day for day in partitions if day < oldest_kept_day):
        try:
            with conn.transaction(), conn.cursor() as cursor:
                if _drop_day_if_published(cursor, day, partitions[day], dry_run=dry_run):
                    purge.dropped.append(day)
                    purge.bytes += sum(partition.bytes for partition in partitions[day])
                else:
                    purge.unpublished.append(day)
        except psycopg.errors.LockNotAvailable:
            purge.busy.append(day)
    _log(purge)
    return purge


def _drop_day_if_published(
    cursor: psycopg.Cursor, day: date, partitions: list[DayPartition], *, dry_run: bool
) -> bool:
    params = interval_params(Interval.for_day(day))
    cursor.execute("SELECT set_config('lock_timeout', %s, true)", (LOCK_TIMEOUT,))
    lock_day(cursor, Interval.for_day(day))
    (published,) = cursor.execute(sql("select_day_published"), params).fetchone()
    if published and not dry_run:
        drop_partitions(cursor, partitions)
        cursor.execute(sql("delete_day_stage_ledgers"), params)
    return bool(published)


def _log(purge: LandingPurge) -> None:
    verb = "would drop" if purge.dry_run else "dropped"
    if purge.dropped:
        log.info(
            "%s the landing and staging of %d published days, %s to %s (%.1f MB); keeping %s on",
            verb,
            len(purge.dropped),
            min(purge.dropped),
            max(purge.dropped),
            purge.bytes / 1e6,
            purge.oldest_kept_day,
        )
    else:
        log.info("no landing or staging before %s to drop", purge.oldest_kept_day)
    if purge.unpublished:
        log.warning(
            "kept the landing of %d old days that load has not published: %s. Run learning_platform_etl "
            "for each of them (it publishes the day and retention drops it next time), or leave them",
            len(purge.unpublished),
            ", ".join(day.isoformat() for day in purge.unpublished),
        )
    if purge.busy:
        log.warning(
            "%d days were in use by a pipeline run for more than %s and are left for a retry: %s",
            len(purge.busy),
            LOCK_TIMEOUT,
            ", ".join(day.isoformat() for day in purge.busy),
        )
