"""The bodies of the ``usage_files_ingest`` tasks: an :class:`IngestSpec` in, a few counts out.

What passes between tasks is the store's ledger (files, ranges, checkpoints), keyed by the run's
id; XCom carries only the mapped ranges' keys. Each function opens the store's database, does its
step in the store's transactions, and returns a small dict. A failure retrying cannot fix (a
``PermanentFailure``) fails its task at once: see ``include.common.failures``.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg

from include.common.alerts import check_alerts_can_be_sent
from include.common.failures import no_retry_on_permanent_failure
from include.common.postgres import airflow_postgres
from include.usage_ingest import store
from include.usage_ingest.archive import dispose
from include.usage_ingest.assets import CONSUMER_TOTALS, TOTALS_UPDATES
from include.usage_ingest.finished import FileChanged, find_finished
from include.usage_ingest.ingest import process_range
from include.usage_ingest.planning import plan_file
from include.usage_ingest.settings import IngestSpec

if TYPE_CHECKING:
    from airflow.sdk.types import OutletEventAccessorsProtocol

    from include.usage_ingest.model import FilePlan

log = logging.getLogger(__name__)


def _store(spec: IngestSpec) -> AbstractContextManager[psycopg.Connection]:
    return airflow_postgres(spec.conn_id, application_name=spec.session_name)


@no_retry_on_permanent_failure
def migrate(spec: IngestSpec) -> dict[str, Any]:
    """Refuse a run nobody would hear of failing; create or upgrade the store's schema."""
    check_alerts_can_be_sent()
    with _store(spec) as conn:
        applied = store.migrate_schema(conn)
    return {"migrations_applied": applied}


@no_retry_on_permanent_failure
def claim(spec: IngestSpec, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Plan and claim the finished files (up to ``max_files_per_run``); dispose of duplicates.

    Returns the ranges still to process of the files this run holds, as the mapped
    ``process_range``'s arguments. Rerun, it claims nothing twice and returns what is left.
    """
    found = find_finished(
        spec.incoming, spec.pattern, settle_seconds=spec.settle_seconds, now=now or datetime.now(UTC)
    )
    outcomes: dict[store.ClaimOutcome, int] = dict.fromkeys(store.ClaimOutcome, 0)
    with _store(spec) as conn:
        held = len(store.files_claimed_by(conn, spec.run_id))
        for file in found:
            if held >= spec.max_files_per_run:
                log.info("%d files held: the rest waits for the next run", held)
                break
            if store.held_elsewhere(conn, file, run_id=spec.run_id):
                outcomes[store.ClaimOutcome.BUSY] += 1
                log.info("%s: another run is processing it", file.name)
                continue
            try:
                plan = plan_file(file, range_bytes=spec.range_bytes)
            except (FileNotFoundError, FileChanged) as changed:
                # Gone (another run disposed of it) or written to since the scan: a later run sees it again.
                log.warning("%s left for a later run: %s", file.name, changed)
                continue
            claimed = store.claim_file(conn, plan, run_id=spec.run_id, lease=spec.lease)
            outcomes[claimed.outcome] += 1
            log.info(
                "%s (%d bytes, %d lines, %d ranges): %s",
                file.name,
                file.size,
                plan.lines,
                len(plan.ranges),
                claimed.outcome,
            )
            if claimed.outcome is store.ClaimOutcome.DUPLICATE:
                _dispose_duplicate(conn, spec, plan, claimed)
            elif claimed.outcome in (store.ClaimOutcome.CLAIMED, store.ClaimOutcome.TAKEN_OVER):
                held += 1
        ranges = store.claimed_ranges(conn, spec.run_id)
    log.info(
        "%d finished files: %s; %d ranges to process",
        len(found),
        ", ".join(f"{outcome} {n}" for outcome, n in outcomes.items() if n),
        len(ranges),
    )
    return [{"file_id": r.file_id, "range_no": r.range_no, "label": r.label} for r in ranges]


def _dispose_duplicate(
    conn: psycopg.Connection, spec: IngestSpec, plan: FilePlan, claimed: store.Claim
) -> None:
    where = dispose(
        plan.file,
        incoming=spec.incoming,
        archive=spec.archive,
        how=spec.after_processing,
        tag=claimed.file_id,
    )
    if claimed.disposed_to is None:
        # Not a new drop: the done file itself, left in incoming by a crash before its disposal.
        if where is not None:
            store.record_disposal(conn, claimed.file_id, where)
        log.info("%s was done already: disposed of to %s", plan.file.name, where)
        return
    store.record_duplicate(
        conn, plan, original_file_id=claimed.file_id, run_id=spec.run_id, disposed_to=where or "(gone)"
    )
    log.warning(
        "%s was dropped again with the same content as file %d (applied already): not applied, moved to %s",
        plan.file.name,
        claimed.file_id,
        where,
    )


@no_retry_on_permanent_failure
def process(spec: IngestSpec, file_id: int, range_no: int) -> dict[str, Any]:
    """Apply one range from its checkpoint to its end."""
    with _store(spec) as conn:
        result = process_range(
            conn, file_id, range_no, limits=spec.limits, committed_by=spec.run_id, lease=spec.lease
        )
    return {
        "batches": result.batches,
        "lines_applied": result.lines_applied,
        "lines_quarantined": result.lines_quarantined,
        "stale_batches": result.stale,
        "seconds": round(result.seconds, 3),
    }


@no_retry_on_permanent_failure
def finish(spec: IngestSpec, outlet_events: OutletEventAccessorsProtocol) -> dict[str, Any]:
    """Mark the run's complete files done, dispose of them, log the run's account, announce it."""
    with _store(spec) as conn:
        disposed = 0
        for account in store.files_claimed_by(conn, spec.run_id):
            if account.disposed_to is not None:
                continue
            # Raises AccountMismatch, naming the file and its numbers, if its lines do not add up.
            store.mark_done(conn, account.file_id)
            where = dispose(
                store.range_state(conn, account.file_id, 0).file,
                incoming=spec.incoming,
                archive=spec.archive,
                how=spec.after_processing,
                tag=account.file_id,
            )
            store.record_disposal(conn, account.file_id, where or "(gone before disposal)")
            disposed += where is not None
        summary = store.run_summary(conn, spec.run_id)
        database = conn.info.dbname
    log.info(
        "%d files, %d lines: %d applied, %d quarantined (%s); %d duplicates; %d consumers in the store",
        summary.files,
        summary.lines,
        summary.lines_applied,
        summary.lines_quarantined,
        ", ".join(f"{reason} {n}" for reason, n in summary.quarantined_by_reason.items()) or "none",
        summary.duplicates,
        summary.consumers_in_store,
    )
    if summary.top_consumers:
        log.info(
            "top consumers by total: %s",
            ", ".join(f"{consumer} {amount}" for consumer, amount in summary.top_consumers),
        )
    extra = {
        "files": summary.files,
        "lines": summary.lines,
        "lines_applied": summary.lines_applied,
        "lines_quarantined": summary.lines_quarantined,
        "duplicates": summary.duplicates,
        "consumers_in_store": summary.consumers_in_store,
        "connection": spec.conn_id,
        "database": database,
    }
    if summary.files:
        outlet_events[TOTALS_UPDATES].add(CONSUMER_TOTALS, extra=extra)
    else:
        # Downstream DAGs run when the totals changed, not for a run that added nothing.
        log.info("no file was added: no asset event")
    return {**extra, "disposed": disposed}
