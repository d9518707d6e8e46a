"""The data-quality gate: checks of a date's figures before the report goes out.

The verdict is stored beside the figures (``daily_quality_checks``) rather than only failing a
task, because the report and the email must say which check failed and mark the figures as
unreliable: nothing is hidden from the people who read them.

| check | passes when |
|---|---|
| ``attempts_present`` | attempts were loaded, unless the source returned nothing |
| ``rejected_share`` | quarantined / judged stays at or under the configured threshold |
| ``no_duplicate_attempts`` | no attempt (same student, type, time and task) is stored twice |
| ``stats_match_warehouse`` | the stored figures equal the same figures counted again now |
| ``volume_normal`` | the judged count reaches the floor and the ratio of the earlier days' median |

*Judged* records are those fetched less the boundary copies (``rules.BoundaryCopy``): a copy the
next window owns is judged there, and counting it here would inflate the rejected share.

**Volume.** An API that answers ``[]`` for every window passes every other check: nothing was
judged, so nothing was wrong. ``volume_normal`` compares the day's judged count with the median
of the latest ``volume_history_days`` earlier dates on record (a median, so that one odd day
does not move the bar) and wants at least ``min_volume_ratio`` of it, and at least the absolute
``min_daily_records`` (0 by default: only the operator knows the platform's size). The ratio
needs ``MIN_VOLUME_HISTORY`` earlier dates; a new warehouse has fewer, and its first days are
held to the floor alone rather than failed for a history nobody could have. The baseline is a
rolling one: a lasting drop (a term ends) fails for about half the history and is then the new
normal, while an outage long enough to become the median is the floor's to catch.

A real quiet day (a holiday, a platform shutdown) is declared in ``quiet_days`` of the
``learning_platform_report`` Variable, not in a trigger-form Param: the scheduled run that
judges the day never sees a form, and the declaration can be made before the day, beside the
gate's other thresholds, and still holds for every rerun and backfill of it. A declared day
passes with the declaration as its stored observation, so ``daily_quality_checks`` shows later
why a low count passed; it is left out of later days' baselines. The floor is a whole day's:
a test-mode hour is held to the ratio of earlier test-mode hours only.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import date

import psycopg

from include.common.failures import PermanentFailure
from include.common.intervals import ONE_DAY, Interval
from include.learning_platform.report_model import QualityCheck
from include.learning_platform.warehouse import interval_params, lock_day, sql

log = logging.getLogger(__name__)

DEFAULT_MAX_REJECTED_SHARE = 0.05
DEFAULT_MIN_DAILY_RECORDS = 0
DEFAULT_MIN_VOLUME_RATIO = 0.2
# Two weeks: every weekday twice, so a quiet weekend is one of several lows, not the median.
DEFAULT_VOLUME_HISTORY_DAYS = 14
# Fewer earlier dates than this make a median of noise: the ratio waits, the floor still holds.
MIN_VOLUME_HISTORY = 3
VOLUME_CHECK = "volume_normal"

# The figures compared by ``stats_match_warehouse``, in the order select_quality_facts returns them.
_COMPARED = ("loaded", "quarantined", "unique_users", "runs", "submits", "successful_submits")


@dataclass(frozen=True, slots=True)
class QualityFacts:
    judged: int  # records fetched, less the boundary copies the next window judges
    stored: dict[str, int]  # the figures in daily_stats
    recounted: dict[str, int]  # the same figures counted from the warehouse now
    duplicate_attempts: int  # extra copies of attempts stored more than once
    # judged counts of the latest comparable earlier dates, newest first, declared quiet days left out
    earlier_judged: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class VolumeRule:
    """What ``volume_normal`` wants of a day: see the module docstring."""

    min_records: int = DEFAULT_MIN_DAILY_RECORDS  # the floor, whatever the history
    min_ratio: float = DEFAULT_MIN_VOLUME_RATIO  # of the earlier dates' median judged count
    history_days: int = DEFAULT_VOLUME_HISTORY_DAYS  # how many earlier dates make the median


class StatsMissing(PermanentFailure):
    """The date has no statistics to check: compute_stats has not run for it."""


def evaluate(
    facts: QualityFacts,
    *,
    max_rejected_share: float,
    volume: VolumeRule = VolumeRule(),
    declared_quiet: bool = False,
) -> tuple[QualityCheck, ...]:
    """The verdict of every check on ``facts``; a pure function of its inputs."""
    loaded, quarantined = facts.stored["loaded"], facts.stored["quarantined"]
    share = quarantined / facts.judged if facts.judged else 0.0
    mismatches = [
        f"{name} {facts.stored[name]} in the statistics, {facts.recounted[name]} in the warehouse"
        for name in _COMPARED
        if facts.stored[name] != facts.recounted[name]
    ]
    return (
        QualityCheck(
            "attempts_present",
            passed=loaded > 0 or facts.judged == 0,
            observed=f"{loaded} loaded of {facts.judged} judged",
            expected="at least 1 loaded when any record was judged",
        ),
        QualityCheck(
            "rejected_share",
            passed=share <= max_rejected_share,
            observed=f"{share:.2%} ({quarantined} of {facts.judged})",
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
        judge_volume(facts.judged, facts.earlier_judged, volume, declared_quiet=declared_quiet),
    )


def judge_volume(
    judged: int, earlier: Sequence[int], rule: VolumeRule, *, declared_quiet: bool
) -> QualityCheck:
    """``volume_normal``: is ``judged`` no less than the floor and the ratio of ``earlier``'s median?"""
    if declared_quiet:
        return QualityCheck(
            VOLUME_CHECK,
            passed=True,
            observed=f"{judged} judged on a date declared quiet",
            expected="any count: the date is in quiet_days",
        )
    if len(earlier) < MIN_VOLUME_HISTORY:
        minimum = rule.min_records
        basis = (
            f"the floor only: {len(earlier)} earlier dates on record, the ratio needs {MIN_VOLUME_HISTORY}"
        )
    else:
        median = statistics.median(earlier)
        # Rounded before the ceiling so that 0.1 × 30 asks for 3, not for 3.0000000000000004 → 4.
        by_ratio = math.ceil(round(rule.min_ratio * median, 6))
        minimum = max(by_ratio, rule.min_records)
        # .12g: exact for any count, never 1e+06 for a million, and 0.125 stays 0.125 (not 12%).
        basis = f"{rule.min_ratio:.12g} × {median:.12g}, the median of the {len(earlier)} earlier dates"
        if rule.min_records:
            basis += f"; floor {rule.min_records}"
    return QualityCheck(
        VOLUME_CHECK,
        passed=judged >= minimum,
        observed=f"{judged} judged",
        expected=f"at least {minimum} ({basis})",
    )


def check_day(
    conn: psycopg.Connection,
    interval: Interval,
    *,
    max_rejected_share: float,
    dag_run_id: str,
    volume: VolumeRule = VolumeRule(),
    quiet_days: Collection[date] = (),
) -> tuple[QualityCheck, ...]:
    """Run the checks on ``interval.day``'s figures and record the verdict beside them."""
    params = interval_params(interval, day=interval.day, dag_run_id=dag_run_id)
    if interval.end - interval.start != ONE_DAY:
        volume = replace(volume, min_records=0)
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
        history = {**params, "quiet_days": sorted(quiet_days), "history_days": volume.history_days}
        cursor.execute(sql("select_volume_history"), history)
        earlier = tuple(judged for (judged,) in cursor.fetchall())
        checks = evaluate(
            _facts(row, earlier),
            max_rejected_share=max_rejected_share,
            volume=volume,
            declared_quiet=interval.day in quiet_days,
        )
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


def _facts(row: Sequence[int], earlier_judged: tuple[int, ...]) -> QualityFacts:
    judged, *stored_and_recounted, duplicates = row
    stored = dict(zip(_COMPARED, stored_and_recounted[: len(_COMPARED)], strict=True))
    recounted = dict(zip(_COMPARED, stored_and_recounted[len(_COMPARED) :], strict=True))
    return QualityFacts(judged, stored, recounted, int(duplicates), earlier_judged)
