"""The relay's store: the durable queue the three stages of a run hand profiles over through.

The decision: every hand-over is a row in PostgreSQL (schema ``profile_relay``, see
``sql/migrations/0001_relay.sql``), and every step of a stage is one transaction that both does
its work and records it. ``generate`` inserts a batch of profiles (a retried batch finds its
rows there and inserts nothing); ``process`` judges a batch and queues the in-range ones in the
same statement, claiming them with ``FOR UPDATE SKIP LOCKED`` so that two processors never judge
one profile twice; ``send`` (``include.profile_relay.send``) deletes a profile from the outbox
only in the transaction that records its delivery. Nothing lives only in a process's memory, so
each stage can be killed at any point and its retry resumes from the store.

The price: each step costs a round trip and a commit. Steps are therefore batches (the writer
stores everything ticked since its last commit, ``process`` judges up to 500 profiles per
statement), so the store stays far below one commit per profile. Functions here take an open
connection and must be called outside a transaction: each opens and commits its own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import psycopg

from include.common.failures import PermanentFailure
from include.common.migrations import migrate
from include.common.postgres import read_sql
from include.profile_relay.profiles import Profile
from include.profile_relay.settings import RelaySpec

SCHEMA = "profile_relay"
SQL_DIR = Path(__file__).parent / "sql"
JUDGE_BATCH = 500


class RunConflict(PermanentFailure):
    """The store holds this run id with other settings: resuming would mix two runs' people."""


class RunNotRegistered(PermanentFailure):
    """A stage started for a run that ``prepare`` never registered."""


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run as registered, and when each stage finished."""

    dag_id: str
    count: int
    seed: int
    locale: str
    reference_date: date
    age_min: int
    age_max: int
    interval_seconds: float
    registered_at: datetime
    generated_at: datetime | None
    processed_at: datetime | None
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class Judged:
    """What one :func:`judge_batch` did."""

    judged: int
    queued: int
    last_seq: int | None


@dataclass(frozen=True, slots=True)
class JudgingState:
    generated: bool
    unjudged: bool
    # The highest seq stored: a processor waiting for more waits for the one after it.
    stored: int


@dataclass(frozen=True, slots=True)
class RunProgress:
    """A run's books, stage by stage."""

    count: int
    stored: int
    judged: int
    in_range: int
    queued: int
    delivered: int
    duplicates: int
    delivered_out_of_range: int
    # Deliveries committed before the run was generated: the stages did overlap.
    delivered_while_generating: int
    failed_sends: int
    generated_at: datetime | None
    processed_at: datetime | None
    sent_at: datetime | None

    def problems(self) -> list[str]:
        """What breaks "every generated in-range profile delivered exactly once, none other sent"."""
        sent_after_processing = (
            None not in (self.sent_at, self.processed_at) and self.sent_at > self.processed_at
        )
        checks = [
            (self.stored == self.count, f"{self.stored} of {self.count} profiles generated"),
            (self.judged == self.count, f"{self.judged} of {self.count} profiles judged"),
            (self.queued == 0, f"{self.queued} profiles left in the outbox"),
            (self.delivered == self.in_range, f"{self.delivered} delivered but {self.in_range} in range"),
            (self.delivered_out_of_range == 0, f"{self.delivered_out_of_range} out of range delivered"),
            (
                sent_after_processing,
                f"sending ended at {self.sent_at}, not after processing ({self.processed_at})",
            ),
        ]
        return [problem for ok, problem in checks if not ok]


@dataclass(frozen=True, slots=True)
class TickStats:
    """The gaps between a run's consecutive ticks, in seconds (None without two ticks)."""

    gaps: int
    median_gap: float | None
    min_gap: float | None
    max_gap: float | None


def migrate_schema(conn: psycopg.Connection) -> list[str]:
    """Create or upgrade the ``profile_relay`` schema; returns the migrations applied now."""
    return migrate(conn, SCHEMA, SQL_DIR / "migrations")


def register_run(conn: psycopg.Connection, spec: RelaySpec) -> bool:
    """Record the run with its settings; True if new. Idempotent for the same settings.

    A run id already registered with other settings (the Variable changed between a run's
    tries, say) raises :class:`RunConflict`: its stored profiles were made with the old ones.
    """
    with conn.transaction():
        if conn.execute(read_sql(SQL_DIR, "insert_run"), _registered(spec)).fetchone() is not None:
            return True
    verify_run(conn, spec)
    return False


def verify_run(conn: psycopg.Connection, spec: RelaySpec) -> RunRecord:
    """The run as registered, if it was registered with ``spec``'s settings.

    Each stage reads its settings from its own task's params and the Variable: checked against
    the registered run, a stage can never make, judge or send by settings the run did not start
    with. :class:`RunNotRegistered` if missing, :class:`RunConflict` if different.
    """
    record = run_record(conn, spec.run_id)
    differences = [
        f"{key} {getattr(record, key)!r} (now {value!r})"
        for key, value in _registered(spec).items()
        if key != "run_id" and getattr(record, key) != value
    ]
    if differences:
        raise RunConflict(
            f"run {spec.run_id} is already in {SCHEMA}.runs with other settings: "
            f"{', '.join(differences)}. Its stored profiles were made with those: trigger a new run "
            f"for the new settings, or set the params (or the Variable) back to resume this one"
        )
    return record


def _registered(spec: RelaySpec) -> dict[str, object]:
    """What the runs table keeps of a spec: all that decides which people a run makes and keeps."""
    return {
        "run_id": spec.run_id,
        "dag_id": spec.dag_id,
        "count": spec.count,
        "seed": spec.seed,
        "locale": spec.locale,
        "reference_date": spec.reference_date,
        "age_min": spec.age_min,
        "age_max": spec.age_max,
        "interval_seconds": spec.interval_seconds,
    }


def run_record(conn: psycopg.Connection, run_id: str) -> RunRecord:
    """The run as registered; :class:`RunNotRegistered` if it is not."""
    with conn.transaction():
        row = conn.execute(read_sql(SQL_DIR, "select_run"), {"run_id": run_id}).fetchone()
    if row is None:
        raise RunNotRegistered(
            f"run {run_id} is not in {SCHEMA}.runs: its prepare task registers it. Clear the run's "
            "prepare task with its downstream tasks"
        )
    return RunRecord(*row)


def next_seq(conn: psycopg.Connection, run_id: str) -> int:
    """The seq of the first profile not stored yet (1 for a new run)."""
    with conn.transaction():
        (seq,) = conn.execute(read_sql(SQL_DIR, "select_next_seq"), {"run_id": run_id}).fetchone()
    return seq


def store_profiles(conn: psycopg.Connection, run_id: str, batch: Sequence[tuple[Profile, datetime]]) -> int:
    """Store ``(profile, ticked_at)`` pairs in one statement and commit; returns the rows new."""
    if not batch:
        return 0
    values = {
        "run_id": run_id,
        "seqs": [profile.seq for profile, _ in batch],
        "ticked_at": [ticked_at for _, ticked_at in batch],
        "birthdates": [profile.birthdate for profile, _ in batch],
        "profiles": [json.dumps(profile.data, ensure_ascii=False) for profile, _ in batch],
    }
    with conn.transaction():
        inserted = conn.execute(read_sql(SQL_DIR, "insert_profiles"), values).rowcount
    return inserted


def mark_generated(conn: psycopg.Connection, run_id: str) -> datetime:
    """Record that every profile of the run is stored; returns when it first was. Idempotent."""
    with conn.transaction():
        row = conn.execute(read_sql(SQL_DIR, "mark_generated"), {"run_id": run_id}).fetchone()
    if row is None:
        progress = run_progress(conn, run_id)
        raise RuntimeError(
            f"run {run_id} cannot be marked generated: {progress.stored} of {progress.count} profiles "
            "are stored. The generate task's retry stores the rest"
        )
    return row[0]


def judge_batch(conn: psycopg.Connection, run_id: str, *, limit: int = JUDGE_BATCH) -> Judged:
    """Judge up to ``limit`` unjudged profiles (lowest seq first) and queue the in-range ones; commit.

    Profiles another processor holds are skipped, never waited for.
    """
    with conn.transaction():
        judged, queued, last_seq = conn.execute(
            read_sql(SQL_DIR, "judge_batch"), {"run_id": run_id, "limit": limit}
        ).fetchone()
    return Judged(judged, queued, last_seq)


def judging_state(conn: psycopg.Connection, run_id: str) -> JudgingState:
    with conn.transaction():
        row = conn.execute(read_sql(SQL_DIR, "select_judging_state"), {"run_id": run_id}).fetchone()
    if row is None:
        run_record(conn, run_id)  # raises, saying what to do
    return JudgingState(*row)


def mark_processed(conn: psycopg.Connection, run_id: str) -> datetime | None:
    """Record that the run is generated and every profile judged; None if not yet. Idempotent."""
    with conn.transaction():
        row = conn.execute(read_sql(SQL_DIR, "mark_processed"), {"run_id": run_id}).fetchone()
    return None if row is None else row[0]


def run_progress(conn: psycopg.Connection, run_id: str) -> RunProgress:
    with conn.transaction():
        row = conn.execute(read_sql(SQL_DIR, "select_progress"), {"run_id": run_id}).fetchone()
    if row is None:
        run_record(conn, run_id)  # raises, saying what to do
    return RunProgress(*row)


def failures_by_kind(conn: psycopg.Connection, run_id: str) -> dict[str, tuple[int, int]]:
    """The run's failed sends: kind -> (sends, profiles in them)."""
    with conn.transaction():
        rows = conn.execute(read_sql(SQL_DIR, "select_failures_by_kind"), {"run_id": run_id}).fetchall()
    return {kind: (sends, profiles) for kind, sends, profiles in rows}


def tick_stats(conn: psycopg.Connection, run_id: str) -> TickStats:
    with conn.transaction():
        row = conn.execute(read_sql(SQL_DIR, "select_tick_stats"), {"run_id": run_id}).fetchone()
    return TickStats(*row)
