"""Stage 3: publish an interval's staged attempts and rejections in one transaction.

The warehouse (``attempts``), the quarantine and the batch ledger change together or not at
all: a rerun of the same day leaves exactly the same rows, and a failure leaves the previous
state. Loading publishes only validate's verdict on the interval's current landing, as the stage
ledgers record them (``landing_batches``, ``staging_batches``), and checks that the staging
tables still hold what validate staged. The batch ledger names the landing it published, which is
what tells retention that the landing may go.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from uuid import UUID

import psycopg

from include.common.failures import PermanentFailure
from include.common.intervals import Interval
from include.learning_platform.warehouse import interval_params, lock_day, sql

log = logging.getLogger(__name__)


class StagingIncomplete(RuntimeError):
    """The staging is not validate's verdict on the interval's current landing.

    A retry can heal it: a concurrent run of the same day may be validating its new landing.
    """


class NothingToLoad(StagingIncomplete, PermanentFailure):
    """No landing is recorded for the interval: only a new extract gives load something."""


@dataclass(frozen=True, slots=True)
class LoadResult:
    fetched: int
    loaded: int
    quarantined: int
    flagged: int
    boundary_copies: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def load_interval(conn: psycopg.Connection, interval: Interval, *, dag_run_id: str) -> LoadResult:
    """Replace the interval's attempts and quarantine with what validate staged."""
    params = interval_params(interval, dag_run_id=dag_run_id)
    with conn.transaction(), conn.cursor() as cursor:
        lock_day(cursor, interval)
        landing_id, fetched, valid, flagged, rejected, boundary_copies = _current_verdict(
            cursor, interval, params
        )
        cursor.execute(sql("delete_attempts"), params)
        replaced = cursor.rowcount
        cursor.execute(sql("insert_attempts"), params)
        loaded = cursor.rowcount
        cursor.execute(sql("delete_quarantine"), params)
        cursor.execute(sql("insert_quarantine"), params)
        quarantined = cursor.rowcount
        if (loaded, quarantined) != (valid, rejected):
            raise StagingIncomplete(
                f"{interval}: validate staged {valid} attempts and {rejected} rejections but "
                f"{loaded} and {quarantined} are in the staging tables; run the validate task again"
            )
        result = LoadResult(
            fetched=fetched,
            loaded=loaded,
            quarantined=quarantined,
            flagged=flagged,
            boundary_copies=boundary_copies,
        )
        cursor.execute(sql("upsert_load_batch"), {**params, **result.as_dict(), "landing_id": landing_id})
    log.info(
        "load %s: %d attempts published (replacing %d), %d quarantined, %d flagged, %d boundary copies, "
        "of %d fetched",
        interval,
        loaded,
        replaced,
        quarantined,
        flagged,
        boundary_copies,
        fetched,
    )
    return result


def _current_verdict(
    cursor: psycopg.Cursor, interval: Interval, params: dict
) -> tuple[UUID, int, int, int, int, int]:
    """(landing_id, fetched, valid, flagged, rejected, boundary copies) of validate's verdict on the
    current landing."""
    cursor.execute(sql("select_stage_ledgers"), params)
    row = cursor.fetchone()
    if row is None:
        raise NothingToLoad(
            f"{interval}: no landing is recorded for this interval (never extracted, or removed "
            "since); clear this run from `extract` (Clear on the extract task, with downstream tasks)"
        )
    landing_id, fetched, judged_landing_id, valid, flagged, rejected, boundary_copies = row
    if judged_landing_id != landing_id:
        raise StagingIncomplete(
            f"{interval}: the {fetched} records landed last have not been validated; "
            "run the validate task for this date before load"
        )
    return landing_id, fetched, valid, flagged, rejected, boundary_copies
