"""``make run DAG=user_profiles_relay``, end to end, under a real executor.

``python -m devservices.local_run --dag user_profiles_relay`` runs in a separate process with
its own Airflow home, state folder and ports: its local PostgreSQL, the profile receiver
(requiring a token, as the connection's password), an Execution API server and ``airflow dags
test --use-executor`` with the LocalExecutor, each task in a process of its own. The tests then
read what the run left on disk: the store, the receiver's own SQLite store, and Airflow's
metadata database (the task instances' start and end). Every expectation comes from the store's
profiles and the receiver's keys, never from a figure the run printed about itself.

One small run serves the tests: 120 profiles at 0.05 s, so about 13 are in range and the
generator ticks for 6 s, long enough for sends to happen while it still ticks.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from devservices.postgres import free_port
from devservices.profile_receiver import ReceiverStore
from tests.test_end_to_end import local_run, reopened_warehouse, warehouse_run_environment

pytestmark = pytest.mark.timeout(300)

DB_PASSWORD = "relay-e2e-password"
RECEIVER_TOKEN = "relay-e2e-token"
COUNT = 120
INTERVAL = 0.05
STAGES = ("generate", "process", "send")


@dataclass(frozen=True)
class Run:
    """What one run left: its output, the store's rows and the receiver's keys."""

    completed: subprocess.CompletedProcess[str]
    run_id: str
    in_range: set[int]
    out_of_range: set[int]
    delivered: list[int]
    receiver_keys: list[str]
    last_tick: datetime
    first_delivery: datetime
    processed_at: datetime
    sent_at: datetime
    # task_id -> (start, end, pid), from Airflow's metadata database.
    tasks: dict[str, tuple[datetime, datetime, int]]


@pytest.fixture(scope="module")
def run_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    state = tmp_path_factory.mktemp("relay_local_run")
    with warehouse_run_environment(
        state, db_password=DB_PASSWORD, alert_recipient="oncall@relay.test"
    ) as env:
        receiver = {
            "conn_type": "http",
            "host": "127.0.0.1",
            "port": free_port(),
            "schema": "http",
            "password": RECEIVER_TOKEN,
        }
        env["AIRFLOW_CONN_PROFILE_RECEIVER"] = json.dumps(receiver)
        env["START_LOCAL_PROFILE_RECEIVER"] = "1"
        yield env


@pytest.fixture(scope="module")
def run(run_environment: dict[str, str]) -> Run:
    completed = local_run(
        run_environment,
        "--dag",
        "user_profiles_relay",
        "--count",
        str(COUNT),
        "--interval",
        str(INTERVAL),
        timeout_s=240,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    state = Path(run_environment["PIPELINES_LOCAL_DIR"])
    with reopened_warehouse(run_environment, DB_PASSWORD) as conn:
        [(run_id, processed_at, sent_at)] = conn.execute(
            "SELECT run_id, processed_at, sent_at FROM profile_relay.runs"
        ).fetchall()
        judged = conn.execute("SELECT seq, in_range FROM profile_relay.profiles WHERE run_id = %s", (run_id,))
        in_range = {seq for seq, kept in judged if kept}
        every = {
            seq
            for (seq,) in conn.execute("SELECT seq FROM profile_relay.profiles WHERE run_id = %s", (run_id,))
        }
        delivered = [
            seq
            for (seq,) in conn.execute(
                "SELECT seq FROM profile_relay.deliveries WHERE run_id = %s", (run_id,)
            )
        ]
        (last_tick,) = conn.execute(
            "SELECT max(ticked_at) FROM profile_relay.profiles WHERE run_id = %s", (run_id,)
        ).fetchone()
        (first_delivery,) = conn.execute(
            "SELECT min(sent_at) FROM profile_relay.deliveries WHERE run_id = %s", (run_id,)
        ).fetchone()
    receiver = ReceiverStore(state / "profile_receiver.sqlite")
    try:
        receiver_keys = receiver.keys()
    finally:
        receiver.close()
    assert every == set(range(1, COUNT + 1)), "precondition: the run generated every profile"
    return Run(
        completed=completed,
        run_id=run_id,
        in_range=in_range,
        out_of_range=every - in_range,
        delivered=delivered,
        receiver_keys=receiver_keys,
        last_tick=last_tick,
        first_delivery=first_delivery,
        processed_at=processed_at,
        sent_at=sent_at,
        tasks=task_instances(Path(run_environment["AIRFLOW_HOME"]) / "airflow.db", run_id),
    )


def task_instances(database: Path, run_id: str) -> dict[str, tuple[datetime, datetime, int]]:
    with contextlib.closing(sqlite3.connect(database)) as conn:
        rows = conn.execute(
            "SELECT task_id, start_date, end_date, pid FROM task_instance WHERE dag_id = ? AND run_id = ?",
            ("user_profiles_relay", run_id),
        ).fetchall()
    return {
        task_id: (datetime.fromisoformat(start), datetime.fromisoformat(end), pid)
        for task_id, start, end, pid in rows
        if task_id in STAGES
    }


def test_every_in_range_profile_reaches_the_receiver_exactly_once(run: Run) -> None:
    assert run.in_range, "precondition: some of the 120 profiles are aged 30-40"
    assert run.out_of_range, "precondition: some are not"

    assert sorted(run.receiver_keys) == sorted(f"{run.run_id}/{seq}" for seq in run.in_range)
    assert sorted(run.delivered) == sorted(run.in_range)
    assert "receiver   accepted keys = " in run.completed.stdout


def test_the_three_stage_tasks_ran_at_the_same_time_in_processes_of_their_own(run: Run) -> None:
    # From the data: the receiver acknowledged a profile while the generator still ticked.
    assert run.first_delivery < run.last_tick
    # From Airflow: every stage task had started before any of them ended.
    assert set(run.tasks) == set(STAGES)
    starts = [start for start, _, _ in run.tasks.values()]
    ends = [end for _, end, _ in run.tasks.values()]
    assert max(starts) < min(ends)
    assert len({pid for _, _, pid in run.tasks.values()}) == len(STAGES)


def test_the_sender_finished_strictly_after_the_processor(run: Run) -> None:
    assert run.sent_at > run.processed_at


def test_the_report_prints_one_sent_line_per_delivered_profile(run: Run) -> None:
    lines = [line for line in run.completed.stdout.splitlines() if line.startswith("Отправлено: ")]

    assert len(lines) == len(run.in_range)
    # "ФИО, sex as a word, job, age with its Russian plural".
    assert all(", мужчина, " in line or ", женщина, " in line for line in lines)
    assert all(line.endswith((" год", " года", " лет")) for line in lines)
    assert f"Отправлено {len(run.in_range)} из {COUNT} профилей" in run.completed.stdout


@pytest.mark.parametrize("count", [None, "0"])
def test_the_run_command_refuses_a_missing_or_non_positive_count_before_starting_anything(
    tmp_path: Path, run_environment: dict[str, str], count: str | None
) -> None:
    env = {
        **run_environment,
        "PIPELINES_LOCAL_DIR": str(tmp_path / "state"),
        "AIRFLOW_HOME": str(tmp_path / "a"),
    }
    refused = local_run(
        env, "--dag", "user_profiles_relay", *(["--count", count] if count else []), timeout_s=60
    )

    assert refused.returncode == 2
    assert "COUNT=3000" in refused.stderr
    assert not (tmp_path / "state").exists()
    assert not (tmp_path / "a").exists()
