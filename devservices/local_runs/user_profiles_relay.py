"""``make run DAG=user_profiles_relay COUNT=3000``: generate, filter and send profiles once, then report.

Starts the local services (PostgreSQL, and the profile receiver at the ``profile_receiver``
connection's address: ``START_LOCAL_PROFILE_RECEIVER``) and runs ``airflow dags test
--use-executor`` with the LocalExecutor, so that generate, process and send run at the same
time, each in a process of its own, as in a deployment. Plain ``dags test`` would run them one
after another: the processor would start once the last profile was generated, and nothing
would be sent while the generator ticks.

While it runs, prints one line per delivered profile as the store records it, as the seed's
console did (``Отправлено: ФИО, мужчина, Моторист, 33 года``). Then the run's account:
generated, in range, sent, duplicates the receiver acknowledged, failed sends retried, the
generator's tick gaps, the delay from tick to delivery, and whether sending overlapped
generating (from the data, and from the task instances' start and end). Last, it asks the local
receiver which keys it accepted: exactly the run's in-range profiles, each once, or the command
fails.

Exits 0 when the run succeeded and every check held, 1 otherwise, 2 (before starting anything)
without a positive ``--count`` or with params the DAG would refuse.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
import requests

from devservices.dag_test import LocalAirflow, TaskSpan
from devservices.environment import ConnectionSettings, connection_from_env, flag
from devservices.local_services import start_local_services
from include.common.failures import ConfigurationError
from include.common.postgres import conninfo_from_connection, read_sql
from include.profile_relay import store
from include.profile_relay.send import idempotency_key
from include.profile_relay.settings import (
    DAG_ID,
    DEFAULT_AGE_MAX,
    DEFAULT_AGE_MIN,
    DEFAULT_CONN_ID,
    DEFAULT_INTERVAL_SECONDS,
    DEFAULT_LOCALE,
    DEFAULT_RECEIVER_CONN_ID,
    RelaySpec,
)
from include.profile_relay.texts import sent_line, total_line

SQL_DIR = Path(__file__).parent / "sql"
STAGES = ("generate", "process", "send")
RECEIVER_TIMEOUT_S = 30
# How often the sent lines of the deliveries so far are printed during the run.
FOLLOW_SECONDS = 1.0
OPTION_OF_PARAM = {
    "count": "--count",
    "interval_seconds": "--interval",
    "age_min": "--age-min",
    "age_max": "--age-max",
    "locale": "--locale",
}

log = logging.getLogger("make run")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    # One line per batch it received: the sent lines printed after the run say it per profile.
    logging.getLogger("devservices.profile_receiver").setLevel(logging.WARNING)
    params = parse_args(argv)
    # SIGTERM (a supervisor, `kill`) stops the run and the services as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _run(params)
    except KeyboardInterrupt:
        log.info("interrupted: stopped the run, Airflow and the local services")
        return 130


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _run(params: dict[str, Any]) -> int:
    airflow = LocalAirflow()
    conninfo = conninfo_from_connection(connection_from_env(DEFAULT_CONN_ID))
    receiver = connection_from_env(DEFAULT_RECEIVER_CONN_ID)
    with ExitStack() as services:
        airflow.migrate()
        # Started first: its start-up overlaps the local services'.
        executor = services.enter_context(airflow.execution_api())
        start_local_services(services, profile_receiver=True)
        with psycopg.connect(conninfo, connect_timeout=10) as conn:
            (since,) = conn.execute("SELECT now()").fetchone()
        log.info(
            "relaying %s profiles, one every %s s: generate, process and send at once (LocalExecutor)",
            f"{params['count']:,}",
            params["interval_seconds"],
        )
        with psycopg.connect(conninfo, connect_timeout=10, autocommit=True) as conn:
            follower = _Follower(conn, since, params["locale"])
            # The run stays in this thread, so that Ctrl-C reaches the wait for it and stops it.
            following = threading.Thread(target=follower.follow, name="sent lines", daemon=True)
            following.start()
            try:
                dag_test = airflow.dags_test_now(DAG_ID, params, executor=executor)
            finally:
                follower.stop()
                following.join()
            follower.poll()
            run_id = follower.run_id
            if run_id is None:
                print(f"\n{DAG_ID}: the run registered nothing in the store; Airflow's log: {dag_test.log}")
                return 1
            report = _report(conn, run_id)
            in_range = [
                row[0] for row in conn.execute(read_sql(SQL_DIR, "relay_in_range"), {"run_id": run_id})
            ]
        # Asked while the receiver still runs: it stops with the other local services.
        check = (
            check_receiver(_accepted_keys(receiver), run_id, report.progress.count, in_range)
            if flag("START_LOCAL_PROFILE_RECEIVER")
            else Check(True, "receiver   not checked: not the local one (START_LOCAL_PROFILE_RECEIVER=0)")
        )
    spans = airflow.task_spans(DAG_ID, run_id)
    print(
        f"\n{DAG_ID}: {params['count']:,} profiles, {params['age_min']}–{params['age_max']} kept, "
        f"{dag_test.seconds:.0f} s including Airflow's start-up"
    )
    print(
        total_line(
            report.progress.delivered,
            report.progress.count,
            params["age_min"],
            params["age_max"],
            params["locale"],
        )
    )
    print(_describe(report, spans))
    books = check_books(report)
    print(books.message)
    print(check.message)
    print(f"\nrun {run_id}; Airflow log of the run: {dag_test.log}")
    return 0 if dag_test.succeeded and books.ok and check.ok else 1


@dataclass(frozen=True)
class Report:
    progress: store.RunProgress
    failures: dict[str, tuple[int, int]]
    tick_median: float | None
    tick_p95: float | None
    tick_max: float | None
    lag_median: float | None
    first_tick: datetime | None
    last_tick: datetime | None
    first_delivery: datetime | None


def _latest_run(conn: psycopg.Connection, since: datetime) -> str | None:
    """The run registered since ``since``; None before its ``prepare`` has (created the store)."""
    try:
        found = conn.execute(
            read_sql(SQL_DIR, "relay_latest_run"), {"dag_id": DAG_ID, "since": since}
        ).fetchone()
    except psycopg.errors.UndefinedTable:
        return None
    return None if found is None else found[0]


class _Follower:
    """Prints each profile's sent line as soon as its delivery is in the store, while the run goes on.

    A delivery becomes visible when its transaction commits, moments after its ``sent_at``: each
    look reaches back ``LOOKBACK`` before the latest line printed, and the lines printed are
    remembered, so none is missed and none printed twice.
    """

    LOOKBACK = timedelta(seconds=10)

    def __init__(self, conn: psycopg.Connection, since: datetime, locale: str) -> None:
        self.run_id: str | None = None
        self._conn = conn
        self._since = since
        self._locale = locale
        self._printed: set[int] = set()
        self._latest = since
        self._stopping = threading.Event()

    def follow(self) -> None:
        """Poll every ``FOLLOW_SECONDS`` until :meth:`stop`."""
        while not self._stopping.wait(FOLLOW_SECONDS):
            self.poll()

    def stop(self) -> None:
        self._stopping.set()

    def poll(self) -> None:
        if self.run_id is None:
            self.run_id = _latest_run(self._conn, self._since)
            if self.run_id is None:
                return
        rows = self._conn.execute(
            read_sql(SQL_DIR, "relay_sent_lines"),
            {"run_id": self.run_id, "after": self._latest - self.LOOKBACK},
        )
        for seq, sent_at, name, sex, job, age, outcome in rows:
            if seq not in self._printed:
                self._printed.add(seq)
                self._latest = max(self._latest, sent_at)
                print(sent_line(name, sex, job, age, outcome, self._locale), flush=True)


def _report(conn: psycopg.Connection, run_id: str) -> Report:
    progress = store.run_progress(conn, run_id)
    failures = store.failures_by_kind(conn, run_id)
    timing = conn.execute(read_sql(SQL_DIR, "relay_timing"), {"run_id": run_id}).fetchone()
    return Report(progress, failures, *timing)


def _describe(report: Report, spans: dict[str, TaskSpan]) -> str:
    progress = report.progress
    failed_sends = sum(sends for sends, _ in report.failures.values())
    kinds = ", ".join(f"{kind} {sends}" for kind, (sends, _) in sorted(report.failures.items()))
    return "\n".join(
        [
            f"generated  {progress.stored:,} of {progress.count:,}; ticks every "
            f"{_seconds(report.tick_median)} (median), {_seconds(report.tick_p95)} (p95), "
            f"{_seconds(report.tick_max)} (max)",
            f"in range   {progress.in_range:,} ({progress.judged:,} judged)",
            f"sent       {progress.delivered:,}: {progress.delivered - progress.duplicates:,} accepted, "
            f"{progress.duplicates:,} duplicates acknowledged (sent before, acknowledgement lost)",
            f"retried    {failed_sends:,} failed sends ({progress.failed_sends:,} profiles)"
            + (f": {kinds}" if kinds else ""),
            f"lag        {_seconds(report.lag_median)} from tick to delivery (median)",
            _overlap(report),
            *_task_lines(spans),
        ]
    )


def _overlap(report: Report) -> str:
    if report.first_delivery is None or report.first_tick is None or report.last_tick is None:
        return "overlap    nothing was delivered"
    after_first = (report.first_delivery - report.first_tick).total_seconds()
    before_last = (report.last_tick - report.first_delivery).total_seconds()
    if before_last > 0:
        return (
            f"overlap    first delivery {after_first:.2f} s after the first tick, "
            f"{before_last:.2f} s before the last: sending ran while generating"
        )
    return f"overlap    none: the first delivery came {-before_last:.2f} s after the last tick"


def _task_lines(spans: dict[str, TaskSpan]) -> list[str]:
    """When each stage task ran and in which process, and how long all three ran together."""
    stages = [spans[task] for task in STAGES if task in spans]
    if not stages:
        return []
    lines = [
        f"task       {span.task_id:<9} {_clock(span.start)}–{_clock(span.end)} "
        f"{span.state or 'not run'} (pid {span.pid or '-'})"
        for span in stages
    ]
    starts = [span.start for span in stages if span.start]
    ends = [span.end for span in stages if span.end]
    if len(starts) == len(ends) == len(STAGES):
        together = (min(ends) - max(starts)).total_seconds()
        lines.append(
            f"together   {together:.1f} s with all three stage tasks running"
            if together > 0
            else "together   never: the stage tasks did not run at the same time"
        )
    return lines


def _clock(moment: datetime | None) -> str:
    return "?" if moment is None else moment.astimezone(UTC).strftime("%H:%M:%S.%f")[:-4]


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


class Check(NamedTuple):
    ok: bool
    message: str


def check_books(report: Report) -> Check:
    """The store's own account, as the summarize task checks it (``RunProgress.problems``)."""
    p = report.progress
    if problems := p.problems():
        return Check(False, "store      WRONG: " + "; ".join(problems))
    return Check(True, f"store      every in-range profile delivered once ({p.delivered:,}), none other")


def _accepted_keys(receiver: ConnectionSettings) -> list[str]:
    scheme = receiver.schema or "http"
    headers = {"Authorization": f"Bearer {receiver.password}"} if receiver.password else {}
    response = requests.get(
        f"{scheme}://{receiver.host}:{receiver.port}/accepted", headers=headers, timeout=RECEIVER_TIMEOUT_S
    )
    response.raise_for_status()
    return response.json()["keys"]


def check_receiver(accepted: list[str], run_id: str, count: int, in_range: list[int]) -> Check:
    """The receiver's keys of this run against the run's in-range profiles: each exactly once.

    The receiver's store outlives runs: only the keys of this run's profiles count.
    """
    keys_of_run = {idempotency_key(run_id, seq) for seq in range(1, count + 1)}
    of_run = Counter(key for key in accepted if key in keys_of_run)
    expected = {idempotency_key(run_id, seq) for seq in in_range}
    twice = sorted(key for key, n in of_run.items() if n > 1)
    missing = sorted(expected - of_run.keys())
    unexpected = sorted(of_run.keys() - expected)
    if twice or missing or unexpected:
        return Check(
            False,
            f"receiver   WRONG: {len(missing):,} in-range profiles missing, {len(unexpected):,} not in range "
            f"accepted, {len(twice):,} accepted twice (e.g. {(missing + unexpected + twice)[0]})",
        )
    return Check(True, f"receiver   accepted keys = the {len(expected):,} in-range profiles, each once")


def parse_args(argv: list[str] | None) -> dict[str, Any]:
    """The DAG's params from the options; refused (exit 2) as the DAG would refuse them."""
    parser = argparse.ArgumentParser(
        prog="make run DAG=user_profiles_relay COUNT=<n> ARGS=...",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--count", type=int, help="how many profiles to generate (required; COUNT=)")
    parser.add_argument(
        "--interval",
        type=float,
        default=DEFAULT_INTERVAL_SECONDS,
        help="seconds between two generated profiles (%(default)s)",
    )
    parser.add_argument(
        "--age-min", type=int, default=DEFAULT_AGE_MIN, help="youngest kept, inclusive (%(default)s)"
    )
    parser.add_argument(
        "--age-max", type=int, default=DEFAULT_AGE_MAX, help="oldest kept, inclusive (%(default)s)"
    )
    parser.add_argument("--locale", default=DEFAULT_LOCALE, help="Faker locale of the profiles (%(default)s)")
    args = parser.parse_args(argv)
    if args.count is None or args.count < 1:
        given = "none was given" if args.count is None else f"not {args.count}"
        parser.error(
            f"the number of profiles must be a whole number of at least 1, {given}: "
            "make run DAG=user_profiles_relay COUNT=3000"
        )
    params = {
        "count": args.count,
        "interval_seconds": args.interval,
        "age_min": args.age_min,
        "age_max": args.age_max,
        "locale": args.locale,
    }
    try:
        # The DAG's own validation, before anything starts: a run it would refuse is not begun.
        RelaySpec.from_params(params, run_id="make run", reference_date=datetime.now(UTC).date())
    except ConfigurationError as error:
        parser.error(_in_options(str(error)))
    return params


def _in_options(message: str) -> str:
    """The DAG's message about its params, naming this command's options instead."""
    message = message.replace("the params ", "the options ").replace("the param ", "the option ")
    for param, option in OPTION_OF_PARAM.items():
        message = message.replace(f"'{param}'", option)
    return message


if __name__ == "__main__":
    sys.exit(main())
