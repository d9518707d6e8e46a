"""The bodies of the ``user_profiles_relay`` tasks: a :class:`RelaySpec` in, a few counts out.

What passes between the stages is the store (``profile_relay``), keyed by the run's id; XCom
carries only each task's counts. ``prepare`` creates the store and registers the run; the three
stages then run at the same time, each a loop over its own connection (``generate.py``,
``process.py``, ``send.py``), and ``summarize`` checks the run's account once they all ended. A
failure retrying cannot fix (a ``PermanentFailure``) fails its task at once: see
``include.common.failures``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import psycopg

from include.common.alerts import check_alerts_can_be_sent
from include.common.failures import ConfigurationError, PermanentFailure, no_retry_on_permanent_failure
from include.common.postgres import airflow_postgres, connect, conninfo_from_airflow
from include.profile_relay import stages, store
from include.profile_relay.settings import RelaySpec
from include.profile_relay.texts import total_line

log = logging.getLogger(__name__)


class RelayAccountMismatch(PermanentFailure):
    """After all three stages succeeded, the run's books do not balance: a bug to investigate."""


@no_retry_on_permanent_failure
def prepare(spec: RelaySpec) -> dict[str, Any]:
    """Refuse a run nobody would hear of failing; create or upgrade the store; register the run."""
    check_alerts_can_be_sent()
    with airflow_postgres(spec.conn_id, application_name=spec.session_name) as conn:
        applied = store.migrate_schema(conn)
        new = store.register_run(conn, spec)
    log.info(
        "run %s %s: %d profiles, one every %g s, ages %d..%d on %s, locale %s",
        spec.run_id,
        "registered" if new else "registered before (resuming)",
        spec.count,
        spec.interval_seconds,
        spec.age_min,
        spec.age_max,
        spec.reference_date,
        spec.locale,
    )
    return {
        "migrations_applied": applied,
        "registered": new,
        "reference_date": spec.reference_date.isoformat(),
    }


@no_retry_on_permanent_failure
def generate(spec: RelaySpec) -> dict[str, Any]:
    """Make the run's profiles one per tick and store them; resumes after the last one stored."""
    return _counts(stages.generate(spec, _verified_connector(spec)))


@no_retry_on_permanent_failure
def process(spec: RelaySpec) -> dict[str, Any]:
    """Judge every profile as it is stored and queue the in-range ones, until the run is processed."""
    return _counts(stages.process(spec, _verified_connector(spec)))


@no_retry_on_permanent_failure
def send(spec: RelaySpec) -> dict[str, Any]:
    """Deliver the queued profiles to the receiver, each once, until the run is processed and sent."""
    connect_store = _verified_connector(spec)
    from include.profile_relay.send import ReceiverClient  # deferred: requests is heavy

    with ReceiverClient.from_airflow(spec.receiver_conn_id) as receiver:
        return _counts(stages.send(spec, connect_store, receiver))


@no_retry_on_permanent_failure
def summarize(spec: RelaySpec) -> dict[str, Any]:
    """Log the run's account and fail unless every in-range profile was delivered exactly once."""
    with airflow_postgres(spec.conn_id, application_name=spec.session_name) as conn:
        progress = store.run_progress(conn, spec.run_id)
        failures = store.failures_by_kind(conn, spec.run_id)
        ticks = store.tick_stats(conn, spec.run_id)
    log.info("%s", total_line(progress.delivered, progress.count, spec.age_min, spec.age_max, spec.locale))
    log.info(
        "profiles: %d generated, %d judged, %d aged %d..%d, %d delivered (%d the receiver had already), "
        "%d while generation was still going on, %d left in the outbox",
        progress.stored,
        progress.judged,
        progress.in_range,
        spec.age_min,
        spec.age_max,
        progress.delivered,
        progress.duplicates,
        progress.delivered_while_generating,
        progress.queued,
    )
    log.info(
        "failed sends: %s",
        ", ".join(f"{kind} {sends} ({profiles} profiles)" for kind, (sends, profiles) in failures.items())
        or "none",
    )
    if ticks.gaps:
        log.info(
            "ticks every %.3f s at the median (%.3f..%.3f) for an interval of %g s",
            ticks.median_gap,
            ticks.min_gap,
            ticks.max_gap,
            spec.interval_seconds,
        )
    problems = progress.problems()
    if problems:
        raise RelayAccountMismatch(
            f"run {spec.run_id} does not balance: {'; '.join(problems)}. The stages reported success, "
            f"so this is a defect: keep the run's rows in {store.SCHEMA} and report it"
        )
    return {
        "count": progress.count,
        "in_range": progress.in_range,
        "delivered": progress.delivered,
        "duplicates": progress.duplicates,
        "delivered_while_generating": progress.delivered_while_generating,
        "failed_sends": progress.failed_sends,
        "median_tick_seconds": ticks.median_gap,
    }


def _verified_connector(spec: RelaySpec) -> Callable[[], psycopg.Connection]:
    """What a stage takes: opens a new connection to the store, again after PostgreSQL went away.

    Checks first that the run was registered with this task's settings (``store.verify_run``),
    so a Variable changed since ``prepare`` fails the stage at once instead of mixing settings.
    The address is read from Airflow once; later, a refused connection surfaces as psycopg's
    ``OperationalError``, which the stages wait out (``reconnect.py``).
    """
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conninfo = conninfo_from_airflow(spec.conn_id)
    except AirflowNotFoundException:
        raise ConfigurationError(
            f"the Airflow connection '{spec.conn_id}' is not defined: define it (type Postgres, schema = "
            "the database), or name another with the param 'connection'"
        ) from None
    with connect(conninfo, conn_id=spec.conn_id, application_name=spec.session_name) as conn:
        store.verify_run(conn, spec)
    return lambda: psycopg.connect(conninfo, application_name=spec.session_name)


def _counts(result: Any) -> dict[str, Any]:
    """A stage's result as XCom: its numbers and times, as JSON-friendly values."""
    return {
        key: value.isoformat()
        if isinstance(value, datetime)
        else round(value, 3)
        if isinstance(value, float)
        else value
        for key, value in dataclasses.asdict(result).items()
    }
