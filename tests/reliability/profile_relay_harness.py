"""Run one ``user_profiles_relay`` run's three stages at once, as its tasks do, and judge the result.

``RelayRun`` is one DAG run: ``register`` does what the ``prepare`` task does (migrate the store,
register the run with the ``RelaySpec`` the tasks would build), and ``try_stage`` starts one try
of ``generate``, ``process`` or ``send`` in a worker process of its own
(``tests/reliability/workers.py``), so that a test can SIGKILL it while the other two go on. A try
calls what the task's body calls (``include.profile_relay.stages``)
on connections to the store opened like the task's (a new one after PostgreSQL went away) and a
``ReceiverClient`` of the real receiver; it writes that function's result as JSON for the test.
``RelayRun.finish`` waits for the stages and retries a failed try as Airflow would (a new process
running the same stage), up to the DAG's retries.

``RelayOutcome`` judges from the receiver's own store and the pipeline's store, against an
expectation made independently of both: the run's people regenerated from its seed
(``ProfileFactory``, whose output is the run's source data) and their ages counted here, on the
run's reference date, by a rule of this module's own.
"""

from __future__ import annotations

import itertools
import json
import signal
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import psycopg

from devservices.profile_receiver import ProfileReceiver
from include.common.dag_defaults import TASK_RETRIES
from include.profile_relay import stages, store
from include.profile_relay.profiles import ProfileFactory
from include.profile_relay.send import ReceiverClient, idempotency_key
from include.profile_relay.settings import DAG_ID, RelaySpec
from tests.reliability.workers import Worker

# A fixed date: the run's ages do not move with the day the suite runs.
REFERENCE_DATE = date(2026, 12, 6)
# A failed try of a stage is followed by at most this many more: the deployment default of
# every pipeline's tasks (``include.common.dag_defaults``).
RETRIES = TASK_RETRIES
STAGES = ("generate", "process", "send")


def _generate(spec: RelaySpec, connect: Callable[[], psycopg.Connection], receiver_url: str) -> Any:
    return stages.generate(spec, connect)


def _process(spec: RelaySpec, connect: Callable[[], psycopg.Connection], receiver_url: str) -> Any:
    return stages.process(spec, connect)


def _send(spec: RelaySpec, connect: Callable[[], psycopg.Connection], receiver_url: str) -> Any:
    with ReceiverClient(receiver_url) as receiver:
        return stages.send(spec, connect, receiver)


_STAGE_BODIES = {"generate": _generate, "process": _process, "send": _send}


def run_stage(stage: str, spec: RelaySpec, conninfo: str, receiver_url: str, result_file: str) -> None:
    """One try of ``stage``, in a worker; its result as JSON in ``result_file``."""
    session = f"{spec.session_name}.{stage}"

    def connect() -> psycopg.Connection:
        return psycopg.connect(conninfo, application_name=session)

    result = _STAGE_BODIES[stage](spec, connect, receiver_url)
    Path(result_file).write_text(json.dumps(asdict(result), default=str))


@dataclass
class StageTries:
    """The tries of one stage: the worker of each, the exit code of each that ended."""

    stage: str
    workers: list[Worker] = field(default_factory=list)
    exit_codes: list[int] = field(default_factory=list)
    result_file: Path | None = None

    @property
    def current(self) -> Worker:
        return self.workers[-1]

    @property
    def tries(self) -> int:
        return len(self.workers)

    def result(self) -> dict[str, Any]:
        """The result of the try that succeeded."""
        assert self.result_file is not None
        assert self.result_file.exists(), f"{self.stage} did not succeed"
        return json.loads(self.result_file.read_text())


@dataclass
class RelayRun:
    """One run of ``user_profiles_relay``: its spec, store and receiver, and its stages' tries."""

    spec: RelaySpec
    conninfo: str
    receiver: ProfileReceiver
    work_dir: Path
    stages: dict[str, StageTries] = field(default_factory=dict)

    @classmethod
    def register(
        cls,
        conninfo: str,
        receiver: ProfileReceiver,
        work_dir: Path,
        *,
        count: int,
        interval_seconds: float,
        run_id: str = "manual__reliability",
    ) -> RelayRun:
        """The run as ``prepare`` leaves it: the store migrated, the run registered."""
        spec = RelaySpec.from_params(
            {"count": count, "interval_seconds": interval_seconds},
            run_id=run_id,
            dag_id=DAG_ID,
            reference_date=REFERENCE_DATE,
            session_name="relay",
        )
        with psycopg.connect(conninfo) as conn:
            store.migrate_schema(conn)
            store.register_run(conn, spec)
        return cls(spec, conninfo, receiver, work_dir)

    def start(self) -> RelayRun:
        """The first try of each stage, all three at once, as the DAG starts them after ``prepare``."""
        for stage in STAGES:
            self.try_stage(stage)
        return self

    def try_stage(self, stage: str) -> Worker:
        """A new try of ``stage`` in a process of its own (the retry of a try that ended)."""
        tries = self.stages.setdefault(stage, StageTries(stage))
        tries.result_file = self.work_dir / f"{stage}.{tries.tries + 1}.json"
        worker = Worker(run_stage, stage, self.spec, self.conninfo, self.receiver.url, str(tries.result_file))
        tries.workers.append(worker)
        return worker

    def kill(self, stage: str) -> None:
        """SIGKILL the running try of ``stage`` (it must still be running)."""
        worker = self.stages[stage].current
        worker.send_signal(signal.SIGKILL)
        code = worker.wait(30)
        self.stages[stage].exit_codes.append(code)
        assert code == -signal.SIGKILL, f"the {stage} try had ended ({code}) before the kill"

    def session(self, stage: str) -> str:
        """The application_name of the stage's store connections, as pg_stat_activity shows it."""
        return f"{self.spec.session_name}.{stage}"

    def finish(self, timeout_s: float = 120) -> dict[str, int]:
        """Wait for every stage, retrying a failed try as Airflow would; tries per stage."""
        for stage in STAGES:
            tries = self.stages[stage]
            while True:
                code = tries.current.wait(timeout_s)
                tries.exit_codes.append(code)
                if code == 0:
                    break
                assert tries.tries <= RETRIES, f"{stage} failed {tries.tries} tries: {tries.exit_codes}"
                self.try_stage(stage)
        return {stage: self.stages[stage].tries for stage in STAGES}

    def stop(self) -> None:
        """SIGKILL every try still running (a test that failed half-way leaves none behind)."""
        for tries in self.stages.values():
            if tries.current.poll() is None:
                tries.current.send_signal(signal.SIGKILL)
                tries.current.wait(30)

    def progress(self) -> store.RunProgress:
        with psycopg.connect(self.conninfo) as conn:
            return store.run_progress(conn, self.spec.run_id)

    def failures(self) -> dict[str, tuple[int, int]]:
        """Failed sends by kind: (sends, profiles in them)."""
        with psycopg.connect(self.conninfo) as conn:
            return store.failures_by_kind(conn, self.spec.run_id)

    def ticks(self, start: datetime, end: datetime) -> TickJitter:
        """How regular the generator's ticks were between ``start`` and ``end`` (wall clock)."""
        with psycopg.connect(self.conninfo) as conn:
            ticked = [
                moment
                for (moment,) in conn.execute(
                    "SELECT ticked_at FROM profile_relay.profiles"
                    " WHERE run_id = %s AND ticked_at BETWEEN %s AND %s ORDER BY seq",
                    (self.spec.run_id, start, end),
                )
            ]
        return TickJitter.of(ticked, self.spec.interval_seconds)


@dataclass(frozen=True)
class TickJitter:
    """The gaps between consecutive ticks in a window, against the interval."""

    ticks: int
    interval: float
    median_gap: float | None
    worst_deviation: float | None  # max |gap − interval| / interval
    within_10_percent: float | None  # the share of gaps within interval ± 10 %

    @classmethod
    def of(cls, ticked: list[datetime], interval: float) -> TickJitter:
        gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(ticked)]
        if not gaps:
            return cls(len(ticked), interval, None, None, None)
        deviations = [abs(gap - interval) / interval for gap in gaps]
        return cls(
            ticks=len(ticked),
            interval=interval,
            median_gap=statistics.median(gaps),
            worst_deviation=max(deviations),
            within_10_percent=sum(deviation <= 0.10 for deviation in deviations) / len(deviations),
        )

    def __str__(self) -> str:
        if self.median_gap is None:
            return f"{self.ticks} ticks"
        return (
            f"{self.ticks} ticks, median gap {self.median_gap * 1000:.1f} ms "
            f"for {self.interval * 1000:.0f} ms, "
            f"{self.within_10_percent:.0%} of gaps within ± 10 %, worst {self.worst_deviation:+.0%}"
        )


def completed_years(birthdate: date, on: date) -> int:
    """Age on ``on``, counted by anniversaries: one born on 29 February has theirs on 1 March in a
    common year. (Written apart from the pipeline's ``age_on`` and PostgreSQL's ``age()``.)"""
    try:
        anniversary = birthdate.replace(year=on.year)
    except ValueError:
        anniversary = date(on.year, 3, 1)
    return on.year - birthdate.year - (on < anniversary)


@dataclass(frozen=True)
class Expected:
    """The run's people, regenerated from its seed, and which of them are in its age range."""

    profiles: dict[int, dict[str, Any]]  # seq -> the whole profile, as generated
    in_range: frozenset[int]

    @classmethod
    def of(cls, spec: RelaySpec) -> Expected:
        factory = ProfileFactory(spec.locale, spec.seed, spec.reference_date)
        people = {seq: factory.make(seq) for seq in range(1, spec.count + 1)}
        return cls(
            profiles={seq: person.data for seq, person in people.items()},
            in_range=frozenset(
                seq
                for seq, person in people.items()
                if spec.age_min <= completed_years(person.birthdate, spec.reference_date) <= spec.age_max
            ),
        )


@dataclass(frozen=True)
class RelayOutcome:
    """What the receiver and the store hold against the run's in-range people (the fault table's row)."""

    in_range: int
    # In-range people the receiver does not hold.
    lost: int
    # People the receiver holds more than once (under different keys: one key is stored once).
    doubled: int
    # Profiles the receiver holds whose age on the reference date is outside the range.
    out_of_range_sent: int
    # Keys the receiver holds that are no in-range profile's of the run, or whose profile differs.
    foreign_or_altered: int
    # Profiles still in the run's outbox, and deliveries the store's books lack or have in excess.
    outbox_left: int
    deliveries_off: int
    # Keys posted again after the receiver had stored them (it answered "duplicate").
    duplicates_dropped: int
    sent_after_processed: bool

    @property
    def exact(self) -> bool:
        return (
            not (
                self.lost
                or self.doubled
                or self.out_of_range_sent
                or self.foreign_or_altered
                or self.outbox_left
                or self.deliveries_off
            )
            and self.sent_after_processed
        )

    @classmethod
    def measure(cls, run: RelayRun, expected: Expected) -> RelayOutcome:
        spec = run.spec
        wanted = {idempotency_key(spec.run_id, seq): seq for seq in expected.in_range}
        keys = run.receiver.accepted_keys()
        held = run.receiver.accepted()
        people = [json.dumps(profile, sort_keys=True) for profile in held.values()]
        foreign_or_altered = sum(
            key not in wanted or held[key] != expected.profiles[wanted[key]] for key in held
        )
        out_of_range = sum(
            not spec.age_min
            <= completed_years(date.fromisoformat(profile["birthdate"]), spec.reference_date)
            <= spec.age_max
            for profile in held.values()
        )
        with psycopg.connect(run.conninfo) as conn:
            delivered = [
                seq
                for (seq,) in conn.execute(
                    "SELECT seq FROM profile_relay.deliveries WHERE run_id = %s", (spec.run_id,)
                )
            ]
            (outbox,) = conn.execute(
                "SELECT count(*) FROM profile_relay.outbox WHERE run_id = %s", (spec.run_id,)
            ).fetchone()
            processed_at, sent_at = conn.execute(
                "SELECT processed_at, sent_at FROM profile_relay.runs WHERE run_id = %s", (spec.run_id,)
            ).fetchone()
        return cls(
            in_range=len(wanted),
            lost=len(wanted.keys() - set(keys)),
            doubled=len(keys) - len(set(keys)) + len(people) - len(set(people)),
            out_of_range_sent=out_of_range,
            foreign_or_altered=foreign_or_altered,
            outbox_left=outbox,
            deliveries_off=len(set(delivered) ^ expected.in_range) + len(delivered) - len(set(delivered)),
            duplicates_dropped=sum(run.receiver.duplicate_posts().values()),
            sent_after_processed=None not in (processed_at, sent_at) and sent_at > processed_at,
        )
