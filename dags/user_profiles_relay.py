"""
### User profiles relay: generate fake people, keep those aged 30–40, send each one exactly once

Triggered with the number of profiles to make (`count`, required: the form and the CLI refuse a
run without it). Three tasks then work **at the same time** on one run: `generate` makes one fake
user profile (Faker, `ru_RU` by default) every `interval_seconds`, `process` keeps the people aged
`age_min` to `age_max` on the run's logical date, and `send` delivers them to the receiver and
logs one line per person, e.g. `Отправлено: Шестаков Ростислав Иосифович, мужчина, Моторист, 33 года`.
They hand profiles over through PostgreSQL (schema `profile_relay` in the `connection`'s database),
never through memory or XCom, so each can crash and resume on its own.

| task | what it does | writes |
|---|---|---|
| `prepare` | checks that failure alerts can reach someone, creates or upgrades the store, registers the run's settings (a rerun must match them) | `profile_relay.runs` |
| `generate` | one profile per tick, due at start + k × interval (no drift); a writer thread stores them in batches, so ticks never wait for the database; marks the run generated | `profile_relay.profiles` |
| `process` | judges new profiles in batches of 500 (`FOR UPDATE SKIP LOCKED`), queues the in-range ones; marks the run processed once it is generated and all are judged | `profiles.age`, `outbox` |
| `send` | claims up to `batch_size` queued profiles, posts them with an idempotency key each, and deletes them from the outbox only in the transaction that records the receiver's acknowledgement; failed batches stay queued and go again; ends after `process` | `deliveries`, `send_failures` |
| `summarize` | logs the account ("Отправлено 287 из 3000 профилей", failed sends by kind, tick regularity) and fails unless every in-range profile was delivered exactly once and none other | nothing |
| `mark_run_failed` | runs only when another task failed, and fails, so that the run shows failed | nothing |

**Exactly once.** Profile *n* of a run is made from a seed derived from the run's id, so a retried
`generate` resumes after the last stored profile and makes the same people; ages count on the
logical date (or, for a run triggered without one, the date it was due), never the wall clock.
`process` judges a profile in the transaction that marks it judged. `send` removes a profile from
the outbox only with the receiver's acknowledgement, and the receiver drops a key it has seen
(`<run_id>/<seq>`), so a batch whose answer was lost is resent and acknowledged as a duplicate.

**Concurrency.** The three stages are downstream of `prepare` only, so the executor starts them
together: they need three free slots (`parallelism`, the pool). With fewer they still finish, in
order, because `generate` outranks `process`, which outranks `send` (`priority_weight`); `process`
and `send` only wait, polling every fifth of an interval (10–100 ms). Each stage reconnects to a
restarted PostgreSQL by itself (2 min for `generate` and `process`, 10 for `send`), a receiver
failing for over 10 minutes fails `send`, and a stage whose upstream went quiet for 15 minutes
fails (`process` with no new profile, `send` with nothing queued and the run not processed), so a
stage that failed for good does not leave the others waiting 24 hours. Their retries resume from
the store. The stage tasks may run 24 hours: `count` × `interval_seconds`
may be at most 23 hours.

**Params** (empty: the Variable `user_profiles_relay`'s value — JSON, these keys — then the
default; `count` never comes from the Variable). `count` (1 to 1,000,000). `interval_seconds` (0.5;
0 = as fast as possible). `age_min`/`age_max` (30/40, inclusive). `locale` (a Faker locale, `ru_RU`;
lines are Russian for `ru_*`, English otherwise). `batch_size` (profiles per POST, 50).
`connection` (Postgres, `warehouse_db`). `receiver` (HTTP: host, port, schema; a password is sent
as a bearer token; `profile_receiver`).

**Run it:** `airflow dags trigger user_profiles_relay --conf '{"count": 3000}'`, or locally with the
stages really concurrent, `make run DAG=user_profiles_relay COUNT=3000`. Plain `airflow dags test`
runs one task at a time in no fixed order: a stage started before `generate` waits for it until it
gives up (15 minutes); use `airflow dags test --use-executor`. `airflow tasks test`
validates the params without the run's conf: give it `--task-params '{"count": 3000}'` too. Clearing
a run's failed task (with its downstream tasks) resumes it; other settings need a new run.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.sdk import Param, dag, task

from include.common.dag_defaults import default_args
from include.common.params import optional_integer, optional_text
from include.common.run_state import mark_run_failed
from include.profile_relay.settings import MAX_BATCH_SIZE, MAX_COUNT, RelaySpec

if TYPE_CHECKING:
    from airflow.sdk import TaskInstance
    from airflow.sdk.types import DagRunProtocol

# The stages run as long as the generation: count × interval, at most 23 h (settings.py).
STAGE_TIMEOUT = timedelta(hours=24)


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # Each run holds three worker slots for as long as it generates.
    max_active_runs=3,
    default_args=default_args(owner="data-platform"),
    tags=["streaming"],
    description="Fake user profiles, generated, filtered by age and sent concurrently; each in-range one delivered exactly once.",
    doc_md=__doc__,
    params={
        "count": Param(
            type="integer",
            minimum=1,
            maximum=MAX_COUNT,
            title="Profiles to generate",
            description=f"Required: how many profiles this run makes (1 to {MAX_COUNT:,}).",
        ),
        "interval_seconds": Param(
            None,
            type=["null", "number"],
            minimum=0,
            title="Interval (seconds)",
            description="One profile every this many seconds; 0: as fast as possible. Empty: 0.5.",
        ),
        "age_min": optional_integer(
            "Youngest age kept",
            "Completed years on the run's date, inclusive. Empty: 30.",
            minimum=0,
            maximum=100,
        ),
        "age_max": optional_integer(
            "Oldest age kept",
            "Completed years on the run's date, inclusive. Empty: 40.",
            minimum=0,
            maximum=100,
        ),
        "locale": optional_text(
            "Faker locale", "Whose names and jobs, e.g. ru_RU (ФИО, Russian lines) or en_US. Empty: ru_RU."
        ),
        "batch_size": optional_integer(
            "Profiles per send",
            f"Profiles per POST to the receiver (1 to {MAX_BATCH_SIZE}). Empty: 50.",
            maximum=MAX_BATCH_SIZE,
        ),
        "connection": optional_text(
            "Database connection", "Postgres connection id of the store. Empty: warehouse_db."
        ),
        "receiver": optional_text(
            "Receiver connection", "HTTP connection id of the receiver. Empty: profile_receiver."
        ),
    },
)
def user_profiles_relay() -> None:
    # TaskFlow injects params, dag_run and ti; each body builds the run's RelaySpec once and
    # imports the pipeline's modules when it runs, keeping parsing light.
    @task(multiple_outputs=False)
    def prepare(params: dict[str, Any], dag_run: DagRunProtocol, ti: TaskInstance) -> dict:
        from include.profile_relay import tasks

        return tasks.prepare(RelaySpec.from_airflow(params, dag_run, task_id=ti.task_id))

    # The three stages: downstream of prepare only, so they run at the same time. With fewer
    # free slots than three, the priorities start them in the order that can finish.
    @task(multiple_outputs=False, execution_timeout=STAGE_TIMEOUT, priority_weight=3)
    def generate(params: dict[str, Any], dag_run: DagRunProtocol, ti: TaskInstance) -> dict:
        from include.profile_relay import tasks

        return tasks.generate(RelaySpec.from_airflow(params, dag_run, task_id=ti.task_id))

    @task(multiple_outputs=False, execution_timeout=STAGE_TIMEOUT, priority_weight=2)
    def process(params: dict[str, Any], dag_run: DagRunProtocol, ti: TaskInstance) -> dict:
        from include.profile_relay import tasks

        return tasks.process(RelaySpec.from_airflow(params, dag_run, task_id=ti.task_id))

    @task(multiple_outputs=False, execution_timeout=STAGE_TIMEOUT, priority_weight=1)
    def send(params: dict[str, Any], dag_run: DagRunProtocol, ti: TaskInstance) -> dict:
        from include.profile_relay import tasks

        return tasks.send(RelaySpec.from_airflow(params, dag_run, task_id=ti.task_id))

    @task(multiple_outputs=False)
    def summarize(params: dict[str, Any], dag_run: DagRunProtocol, ti: TaskInstance) -> dict:
        from include.profile_relay import tasks

        return tasks.summarize(RelaySpec.from_airflow(params, dag_run, task_id=ti.task_id))

    prepared = prepare()
    stages = [generate(), process(), send()]
    summary = summarize()
    prepared >> stages
    stages >> summary
    [prepared, *stages, summary] >> mark_run_failed()


user_profiles_relay()
