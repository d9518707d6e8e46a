"""Stage 3: publish an interval's staged attempts and rejections in one transaction.

The warehouse (``attempts``), the quarantine and the batch ledger change together or not at
all: a rerun of the same day leaves exactly the same rows, and a failure leaves the previous
state. Loading refuses to publish a staging that does not account for every landed record.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import psycopg

from include.common.intervals import Interval
from include.learning_platform.warehouse import interval_params, lock_day, sql

log = logging.getLogger(__name__)


class StagingIncomplete(RuntimeError):
    """The staging tables do not account for the landed records: validate has not run on them."""


@dataclass(frozen=True, slots=True)
class LoadResult:
    fetched: int
    loaded: int
    quarantined: int
    flagged: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def load_interval(conn: psycopg.Connection, interval: Interval, *, dag_run_id: str) -> LoadResult:
    """Replace the interval's attempts and quarantine with what validate staged."""
    params = interval_params(interval, dag_run_id=dag_run_id)
    with conn.transaction(), conn.cursor() as cursor:
        lock_day(cursor, interval)
        cursor.execute(sql("count_stage"), params)
        fetched, valid, flagged, rejected = cursor.fetchone()
        if fetched != valid + rejected:
            raise StagingIncomplete(
                f"{interval}: {fetched} records landed but {valid} valid + {rejected} rejected "
                "are staged; run the validate task for this date before load"
            )
        cursor.execute(sql("delete_attempts"), params)
        replaced = cursor.rowcount
        cursor.execute(sql("insert_attempts"), params)
        loaded = cursor.rowcount
        cursor.execute(sql("delete_quarantine"), params)
        cursor.execute(sql("insert_quarantine"), params)
        quarantined = cursor.rowcount
        result = LoadResult(fetched=fetched, loaded=loaded, quarantined=quarantined, flagged=flagged)
        cursor.execute(sql("upsert_load_batch"), {**params, **result.as_dict()})
    log.info(
        "load %s: %d attempts published (replacing %d), %d quarantined, %d flagged, of %d fetched",
        interval,
        loaded,
        replaced,
        quarantined,
        flagged,
        fetched,
    )
    return result
