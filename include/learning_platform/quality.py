"""The data-quality gate: checks of a date's figures before the report goes out.

The verdict is stored beside the figures (``daily_quality_checks``) rather than only failing a
task, because the report and the email must say which check failed and mark the figures as
unreliable: nothing is hidden from the people who read them.

| check | passes when |
|---|---|
| ``attempts_present`` | attempts were loaded, unless the source returned nothing |
| ``rejected_share`` | quarantined / fetched stays at or under the configured threshold |
| ``no_duplicate_attempts`` | no attempt (same student, type, time and task) is stored twice |
| ``stats_match_warehouse`` | the stored figures equal the same figures counted again now |
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from include.common.failures import PermanentFailure
from include.common.intervals import Interval
from include.learning_platform.report import QualityCheck
from include.learning_platform.warehouse import interval_params, lock_day, sql

log = logging.getLogger(__name__)

DEFAULT_MAX_REJECTED_SHARE = 0.05

# The figures compared by ``stats_match_warehouse``, in the order select_quality_facts returns them.
_COMPARED = ("loaded", "quarantined", "unique_users", "runs", "submits", "successful_submits")


@dataclass(frozen=True, slots=True)
class QualityFacts:
    fetched: int
    stored: dict[str, int]  # the figures in daily_stats
    recounted: dict[str, int]  # the same figures counted from the warehouse now
    duplicate_attempts: int  # extra copies of attempts stored more than once


class StatsMissing(PermanentFailure):
    """The date has no statistics to check: compute_stats has not run for it."""


def evaluate(facts: QualityFacts, *, max_rejected_share: float) -> tuple[QualityCheck, ...]:
    """The verdict of every check on ``facts``; a pure function of its inputs."""
    loaded, quarantined = facts.stored["loaded"], facts.stored["quarantined"]
    share = quarantined / facts.fetched if facts.fetched else 0.0
    mismatches = [
        f"{name} {facts.stored[name]} in the statistics, {facts.recounted[name]} in the warehouse"
        for name in _COMPARED
        if facts.stored[name] != facts.recounted[name]
    ]
    return (
        QualityCheck(
            "attempts_present",
            passed=loaded > 0 or facts.fetched == 0,
            observed=f"{loaded} loaded of {facts.fetched} fetched",
            expected="at least 1 loaded when any record was fetched",
        ),
        QualityCheck(
            "rejected_share",
            passed=share <= max_rejected_share,
            observed=f"{share:.2%} ({quarantined} of {facts.fetched})",
            expected=f"at most {max_rejected_share:.2%}",
        ),
        QualityCheck(
            "no_duplicate_attempts",
            passed=facts.duplicate_attempts == 0,
            observed=f"{facts.duplicate_attempts} extra copies",
            expected="0 extra copies",
        ),
        QualityCheck(
            "stats_match_warehouse",
            passed=not mismatches,
            observed="; ".join(mismatches) or "all figures match",
            expected="all figures match",
        ),
    )


def check_day(
    conn: psycopg.Connection, interval: Interval, *, max_rejected_share: float, dag_run_id: str
) -> tuple[QualityCheck, ...]:
    """Run the checks on ``interval.day``'s figures and record the verdict beside them."""
    params = interval_params(interval, day=interval.day, dag_run_id=dag_run_id)
    with conn.transaction(), conn.cursor() as cursor:
        # The lock keeps a concurrent load or recompute of the day from changing what is judged.
        lock_day(cursor, interval)
        cursor.execute(sql("select_quality_facts"), params)
        row = cursor.fetchone()
        if row is None:
            raise StatsMissing(
                f"no statistics for {interval.day}: clear this run from `compute_stats` "
                "(Clear on the compute_stats task, with downstream tasks)"
            )
        checks = evaluate(_facts(row), max_rejected_share=max_rejected_share)
        cursor.execute(sql("delete_daily_quality_checks"), params)
        cursor.executemany(
            sql("insert_daily_quality_check"),
            [
                {
                    **params,
                    "check_name": c.name,
                    "passed": c.passed,
                    "observed": c.observed,
                    "expected": c.expected,
                }
                for c in checks
            ],
        )
    for check in checks:
        log.info(
            "check %s on %s: %s (observed %s; expected %s)",
            check.name,
            interval.day,
            "passed" if check.passed else "FAILED",
            check.observed,
            check.expected,
        )
    return checks


def _facts(row: Sequence[int]) -> QualityFacts:
    fetched, *stored_and_recounted, duplicates = row
    stored = dict(zip(_COMPARED, stored_and_recounted[: len(_COMPARED)], strict=True))
    recounted = dict(zip(_COMPARED, stored_and_recounted[len(_COMPARED) :], strict=True))
    return QualityFacts(fetched, stored, recounted, int(duplicates))
