"""The task bodies with Airflow's connections and Variable, against a real PostgreSQL.

``send`` has its own tests with the real receiver; here the stages before it, the spec a
task reads from its DAG run, and the summary's account, which must refuse a run that does not
balance.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime

import psycopg
import pytest
from airflow.sdk.exceptions import AirflowFailException

from devservices.environment import postgres_connection_json
from include.profile_relay import store, tasks
from include.profile_relay.settings import RelaySpec
from tests.include.profile_relay.specs import relay_spec


@dataclass(frozen=True)
class DagRun:
    """The fields of Airflow's DAG run (``DagRunProtocol``) a RelaySpec is read from."""

    dag_id: str = "user_profiles_relay"
    run_id: str = "manual__2026-12-06T10:00:00+00:00"
    logical_date: datetime | None = datetime(2026, 12, 6, 10, tzinfo=UTC)
    run_after: datetime = datetime(2026, 12, 6, 10, tzinfo=UTC)


@pytest.fixture
def airflow_store(monkeypatch: pytest.MonkeyPatch, airflow_home, relay_conninfo: str, connect) -> str:
    """The store as the Airflow connection warehouse_db, and the alerting a run's prepare checks."""
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_DB", postgres_connection_json(relay_conninfo))
    monkeypatch.setenv("AIRFLOW_VAR_ALERT_RECIPIENTS", "oncall@example.org")
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": 25, "extra": {"from_email": "a@b.c"}}),
    )
    return relay_conninfo


def test_a_task_reads_its_params_and_fills_the_gaps_from_the_variable(monkeypatch, airflow_home) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_USER_PROFILES_RELAY", json.dumps({"age_max": 45, "locale": "en_US"}))

    spec = RelaySpec.from_airflow({"count": 10, "locale": None, "age_min": 35}, DagRun(), task_id="generate")

    assert (spec.count, spec.age_min, spec.age_max, spec.locale) == (10, 35, 45, "en_US")
    assert spec.reference_date == date(2026, 12, 6)
    assert spec.session_name == "user_profiles_relay.generate"


def test_the_count_never_comes_from_the_variable(monkeypatch, airflow_home) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_USER_PROFILES_RELAY", json.dumps({"count": 3000}))

    with pytest.raises(AirflowFailException, match="no count given"):
        RelaySpec.from_airflow({"count": None}, DagRun(), task_id="prepare")


def test_a_run_without_a_logical_date_counts_on_the_day_it_was_due(airflow_home) -> None:
    run = DagRun(logical_date=None, run_after=datetime(2027, 1, 2, 3, tzinfo=UTC))
    assert RelaySpec.from_airflow({"count": 1}, run, task_id="prepare").reference_date == date(2027, 1, 2)


def test_the_stages_before_send_fill_the_outbox_and_the_summary_refuses_what_is_left(airflow_store) -> None:
    spec = relay_spec(count=120)

    prepared = tasks.prepare(spec)
    generated = tasks.generate(spec)
    processed = tasks.process(spec)

    assert prepared == {"migrations_applied": [], "registered": True, "reference_date": "2026-12-06"}
    assert (generated["first_seq"], generated["stored"]) == (1, 120)
    assert processed["judged"] == 120
    # Nothing was sent: the account names each gap, and the task fails without retries.
    with pytest.raises(
        AirflowFailException, match=rf"{processed['queued']} profiles left in the outbox.*defect"
    ):
        tasks.summarize(spec)


def test_prepare_again_with_other_settings_fails_at_once_naming_them(airflow_store) -> None:
    spec = relay_spec(count=120)
    tasks.prepare(spec)

    assert tasks.prepare(spec)["registered"] is False
    with pytest.raises(AirflowFailException, match=r"count 120 \(now 121\)"):
        tasks.prepare(dataclasses.replace(spec, count=121))


def test_an_undefined_store_connection_names_the_param_to_fix(airflow_home) -> None:
    with pytest.raises(AirflowFailException, match=r"'nowhere' is not defined.*param 'connection'"):
        tasks.generate(relay_spec(connection="nowhere"))


BALANCED = store.RunProgress(
    count=100,
    stored=100,
    judged=100,
    in_range=11,
    queued=0,
    delivered=11,
    duplicates=1,
    delivered_out_of_range=0,
    delivered_while_generating=7,
    failed_sends=3,
    generated_at=datetime(2026, 12, 6, 10, 1, tzinfo=UTC),
    processed_at=datetime(2026, 12, 6, 10, 2, tzinfo=UTC),
    sent_at=datetime(2026, 12, 6, 10, 3, tzinfo=UTC),
)


def test_a_balanced_run_passes_the_account() -> None:
    assert BALANCED.problems() == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"stored": 99}, "99 of 100 profiles generated"),
        ({"judged": 98}, "98 of 100 profiles judged"),
        ({"queued": 2}, "2 profiles left in the outbox"),
        ({"delivered": 10}, "10 delivered but 11 in range"),
        ({"delivered_out_of_range": 1}, "1 out of range delivered"),
        ({"sent_at": BALANCED.processed_at}, "not after processing"),
        ({"sent_at": None}, "sending ended at None"),
    ],
)
def test_the_account_names_what_does_not_balance(change: dict, problem: str) -> None:
    [found] = dataclasses.replace(BALANCED, **change).problems()
    assert problem in found


def test_the_summary_of_a_delivered_run_logs_the_final_count(airflow_store, caplog) -> None:
    spec = relay_spec(count=40)
    tasks.prepare(spec)
    tasks.generate(spec)
    tasks.process(spec)
    # What send does for each queued profile (its own tests prove it does): deliver, then finish.
    with psycopg.connect(airflow_store) as conn, conn.transaction():
        conn.execute(
            "WITH sent AS ("
            "  DELETE FROM profile_relay.outbox WHERE run_id = %(run)s RETURNING seq, queued_at"
            ") INSERT INTO profile_relay.deliveries"
            "  (run_id, seq, idempotency_key, outcome, attempts, queued_at)"
            " SELECT %(run)s, seq, %(run)s || '/' || seq, 'accepted', 1, queued_at FROM sent",
            {"run": spec.run_id},
        )
        conn.execute(
            "UPDATE profile_relay.runs SET sent_at = clock_timestamp() WHERE run_id = %s", (spec.run_id,)
        )
    caplog.set_level("INFO", logger="include.profile_relay.tasks")

    summary = tasks.summarize(spec)

    assert summary["delivered"] == summary["in_range"]
    assert f"Отправлено {summary['delivered']} из 40 профилей (возраст 30–40 лет)" in caplog.messages


@pytest.mark.parametrize("stage", [tasks.generate, tasks.process, tasks.send])
def test_a_stage_whose_settings_changed_since_prepare_fails_at_once(airflow_store, stage) -> None:
    """The Variable changed between prepare and a stage: it must not make, judge or send by it."""
    spec = relay_spec(count=120)
    tasks.prepare(spec)

    with pytest.raises(AirflowFailException, match=r"locale 'ru_RU' \(now 'en_US'\)"):
        stage(dataclasses.replace(spec, locale="en_US"))
    with psycopg.connect(airflow_store) as conn:
        assert store.run_progress(conn, spec.run_id).stored == 0
