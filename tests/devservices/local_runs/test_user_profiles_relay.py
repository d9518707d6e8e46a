"""``make run DAG=user_profiles_relay``'s own judgement: its options, and the checks it exits 1 on.

The end-to-end test (``tests/test_user_profiles_relay_e2e.py``) shows the checks passing on a
real run; these show each one failing on the account it must refuse, which a correct run never
produces.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devservices.dag_test import task_spans
from devservices.local_runs.user_profiles_relay import Report, check_books, check_receiver, parse_args
from include.profile_relay.store import RunProgress

RUN = "manual__2026-12-06T12:00:00+00:00"
PROCESSED = datetime(2026, 12, 6, 12, 10, tzinfo=UTC)


def keys(*seqs: int, run_id: str = RUN) -> list[str]:
    return [f"{run_id}/{seq}" for seq in seqs]


def test_the_receiver_check_holds_for_exactly_the_in_range_keys_of_the_run_whatever_else_it_keeps() -> None:
    # Another run's keys (the store outlives runs) and the order of acceptance do not matter.
    accepted = keys(7, 2, run_id="manual__earlier") + keys(7, 2)

    check = check_receiver(accepted, RUN, count=10, in_range=[2, 7])

    assert check.ok, check.message
    assert "the 2 in-range profiles, each once" in check.message


@pytest.mark.parametrize(
    ("accepted", "wrong"),
    [
        (keys(2, 7, 7), "1 accepted twice"),
        (keys(2), "1 in-range profiles missing"),
        (keys(2, 7, 5), "1 not in range accepted"),
    ],
)
def test_the_receiver_check_fails_on_a_key_twice_missing_or_out_of_range(
    accepted: list[str], wrong: str
) -> None:
    check = check_receiver(accepted, RUN, count=10, in_range=[2, 7])

    assert not check.ok
    assert wrong in check.message


def progress(**changes: object) -> RunProgress:
    done = RunProgress(
        count=100,
        stored=100,
        judged=100,
        in_range=11,
        queued=0,
        delivered=11,
        duplicates=1,
        delivered_out_of_range=0,
        delivered_while_generating=9,
        failed_sends=3,
        generated_at=PROCESSED - timedelta(seconds=1),
        processed_at=PROCESSED,
        sent_at=PROCESSED + timedelta(milliseconds=5),
    )
    return replace(done, **changes)


def report(books: RunProgress) -> Report:
    return Report(books, {}, 0.5, 0.5, 0.5, 0.02, None, None, None)


def test_the_books_of_a_complete_run_pass() -> None:
    assert check_books(report(progress())).ok


def test_the_books_fail_naming_every_gap() -> None:
    check = check_books(report(progress(queued=1, sent_at=None)))

    assert not check.ok
    assert "1 profiles left in the outbox" in check.message
    assert "not after processing" in check.message


@pytest.mark.parametrize("argv", [[], ["--count", "0"], ["--count", "-1"]])
def test_a_run_without_a_positive_count_is_refused_with_the_command_to_type(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as refused:
        parse_args(argv)

    assert refused.value.code == 2
    assert "make run DAG=user_profiles_relay COUNT=3000" in capsys.readouterr().err


def test_params_the_dag_would_refuse_are_refused_naming_the_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as refused:
        parse_args(["--count", "5", "--age-min", "41", "--age-max", "40"])

    assert refused.value.code == 2
    assert "Set the options --age-min ≤ --age-max" in capsys.readouterr().err


def test_the_options_become_the_dags_params() -> None:
    params = parse_args(["--count", "3000", "--interval", "0.25", "--age-max", "45", "--locale", "en_US"])

    assert params == {
        "count": 3000,
        "interval_seconds": 0.25,
        "age_min": 30,
        "age_max": 45,
        "locale": "en_US",
    }


def test_task_spans_are_read_from_the_sqlite_metadata_database(tmp_path: Path) -> None:
    database = tmp_path / "airflow.db"
    with contextlib.closing(sqlite3.connect(database)) as conn, conn:
        conn.execute(
            "CREATE TABLE task_instance (dag_id TEXT, run_id TEXT, task_id TEXT, map_index INTEGER,"
            " state TEXT, start_date TEXT, end_date TEXT, pid INTEGER)"
        )
        conn.executemany(
            "INSERT INTO task_instance VALUES (?, ?, ?, -1, ?, ?, ?, ?)",
            [
                (
                    "user_profiles_relay",
                    RUN,
                    "send",
                    "success",
                    "2026-12-06 12:00:01.5",
                    "2026-12-06 12:00:09",
                    41,
                ),
                ("user_profiles_relay", "other run", "send", "failed", None, None, None),
                ("other_dag", RUN, "send", "success", "2026-12-06 11:00:00", "2026-12-06 11:00:01", 7),
            ],
        )

    [span] = task_spans(database, "user_profiles_relay", RUN).values()

    assert (span.task_id, span.state, span.pid) == ("send", "success", 41)
    assert span.start == datetime(2026, 12, 6, 12, 0, 1, 500000, tzinfo=UTC)
    assert task_spans(tmp_path / "missing.db", "user_profiles_relay", RUN) == {}
    assert not (tmp_path / "missing.db").exists()
