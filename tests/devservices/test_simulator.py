"""The API simulator over real HTTP: the contract, determinism, defects, faults, control, CLI."""

from __future__ import annotations

import ast
import http.client
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import requests

from devservices.environment import PROJECT_ROOT
from devservices.simulator import (
    DEFECT_KINDS,
    SimulatorConfig,
    SimulatorServer,
    generate_records,
    hourly_counts,
    serialize_records,
)
from tests.conftest import CLIENT, CLIENT_KEY

DAY = datetime(2024, 3, 5, tzinfo=UTC)
HOUR = timedelta(hours=1)
# The last instant of DAY: windows are closed, and the next day may have a record at 00:00.
DAY_END = DAY + timedelta(days=1, microseconds=-1)
PASSBACK_KEYS = ("oauth_consumer_key", "lis_result_sourcedid", "lis_outcome_service_url")
CREATED_AT = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{6})?")
SOURCEDID = re.compile(r"(course-v1:[^+:]+\+[^+:]+\+[^+:]+):lms\.example\.org-([0-9a-f]{32}):([0-9a-f]{32})")


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as client:
        yield client


def api_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def fetch(
    simulator: SimulatorServer,
    session: requests.Session,
    start: datetime,
    end: datetime,
    *,
    timeout: float = 30,
    **params: str,
) -> requests.Response:
    query = {"client": CLIENT, "client_key": CLIENT_KEY, "start": api_time(start), "end": api_time(end)}
    return session.get(f"{simulator.base_url}/api/statistics", params={**query, **params}, timeout=timeout)


def records_of(
    simulator: SimulatorServer, session: requests.Session, start: datetime, end: datetime
) -> list[dict]:
    response = fetch(simulator, session, start, end)
    assert response.status_code == 200, response.text
    return response.json()


def created_at(record: dict) -> datetime:
    return datetime.fromisoformat(record["created_at"]).replace(tzinfo=UTC)


def passback_dict(text: object) -> dict | None:
    """What the passback spells if it is a dict literal, parsed without evaluating anything."""
    if not isinstance(text, str) or len(text) > 4096:
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
        return None
    return value if isinstance(value, dict) else None


def is_clean(record: dict, start: datetime, end: datetime) -> bool:
    """Whether the record follows the contract to the letter."""
    if list(record) != ["lti_user_id", "passback_params", "is_correct", "attempt_type", "created_at"]:
        return False
    user_id, passback = record["lti_user_id"], passback_dict(record["passback_params"])
    if not (isinstance(user_id, str) and re.fullmatch(r"[0-9a-f]{32}", user_id)):
        return False
    if passback is None or set(passback) != set(PASSBACK_KEYS):
        return False
    if record["attempt_type"] == "run":
        graded = record["is_correct"] is None
    else:
        graded = record["attempt_type"] == "submit" and record["is_correct"] in (0, 1)
    return graded and bool(CREATED_AT.fullmatch(record["created_at"])) and start <= created_at(record) <= end


# --- authentication and request validation ---------------------------------------------------


@pytest.mark.parametrize(
    "credentials",
    [{}, {"client": CLIENT}, {"client_key": CLIENT_KEY}, {"client": CLIENT, "client_key": ""}],
    ids=["none", "no-key", "no-client", "empty-key"],
)
def test_missing_credentials_are_401_with_an_error_object(simulator, session, credentials) -> None:
    params = {"start": api_time(DAY), "end": api_time(DAY + HOUR), **credentials}
    response = session.get(f"{simulator.base_url}/api/statistics", params=params, timeout=10)

    assert response.status_code == 401
    assert isinstance(response.json(), dict)
    assert "error" in response.json()


@pytest.mark.parametrize(
    ("client", "client_key"),
    [(CLIENT, "not-the-key"), ("someone-else", CLIENT_KEY), (CLIENT, CLIENT_KEY.upper())],
    ids=["wrong-key", "wrong-client", "key-is-case-sensitive"],
)
def test_wrong_credentials_are_403_never_a_list(simulator, session, client, client_key) -> None:
    response = fetch(simulator, session, DAY, DAY + HOUR, client=client, client_key=client_key)

    assert response.status_code == 403
    assert isinstance(response.json(), dict)
    assert "error" in response.json()
    assert client_key not in response.text


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2024-03-05T00:00:00", "2024-03-05 01:00:00"),
        ("2024-03-05 00:00:00", "yesterday"),
        ("2024-03-05 01:00:00", "2024-03-05 00:00:00"),
        ("2024-01-01 00:00:00", "2024-03-05 00:00:00"),
        ("2024-03-05 00:00:00", None),
    ],
    ids=["iso-t", "garbage", "reversed", "too-long", "missing-end"],
)
def test_a_bad_window_is_400(simulator, session, start, end) -> None:
    params = {"client": CLIENT, "client_key": CLIENT_KEY, "start": start, "end": end}
    response = session.get(f"{simulator.base_url}/api/statistics", params=params, timeout=10)

    assert response.status_code == 400
    assert "detail" in response.json()


def test_times_without_a_fractional_part_are_accepted(simulator, session) -> None:
    params = {
        "client": CLIENT,
        "client_key": CLIENT_KEY,
        "start": "2024-03-05 10:00:00",
        "end": "2024-03-05 11:00:00",
    }
    response = session.get(f"{simulator.base_url}/api/statistics", params=params, timeout=10)

    assert response.status_code == 200
    assert response.json() == generate_records(simulator.config, DAY + 10 * HOUR, DAY + 11 * HOUR)


# --- the records ----------------------------------------------------------------------------


def test_clean_records_follow_the_contract(simulator, session) -> None:
    simulator.configure(defects={})
    records = records_of(simulator, session, DAY, DAY_END)

    assert len(records) == simulator.config.records_per_day
    assert all(is_clean(record, DAY, DAY_END) for record in records)
    for record in records:
        passback = passback_dict(record["passback_params"])
        # Python's repr of the dict, key order included: single quotes, not JSON.
        assert record["passback_params"] == repr(passback)
        course, block, user_id = SOURCEDID.fullmatch(passback["lis_result_sourcedid"]).groups()
        assert user_id == record["lti_user_id"]
        org_course_run = course.removeprefix("course-v1:")
        assert passback["lis_outcome_service_url"] == (
            f"https://lms.example.org/courses/{course}/xblock/"
            f"block-v1:{org_course_run}+type@lti+block@{block}/handler_noauth/grade_handler"
        )
    assert [r["created_at"] for r in records] == sorted(r["created_at"] for r in records)


def test_the_records_look_like_a_real_course_platform(simulator, session) -> None:
    simulator.configure(defects={})
    records = records_of(simulator, session, DAY, DAY_END)
    sourcedids = [
        SOURCEDID.fullmatch(passback_dict(r["passback_params"])["lis_result_sourcedid"]) for r in records
    ]
    blocks_per_course: dict[str, set[str]] = {}
    courses_per_user: dict[str, set[str]] = {}
    for match in sourcedids:
        course, block, user_id = match.groups()
        blocks_per_course.setdefault(course, set()).add(block)
        courses_per_user.setdefault(user_id, set()).add(course)
    submits = [r for r in records if r["attempt_type"] == "submit"]

    assert 4 <= len(blocks_per_course) <= 6
    assert all(10 <= len(blocks) <= 40 for blocks in blocks_per_course.values())
    assert 300 <= len(courses_per_user) <= 2000
    assert {len(courses) for courses in courses_per_user.values()} == {1, 2}
    assert 0.65 <= 1 - len(submits) / len(records) <= 0.75
    assert 0.4 <= sum(r["is_correct"] for r in submits) / len(submits) <= 0.6
    # Valid variants of the contract, present but rare.
    assert 0 < sum(type(r["is_correct"]) is bool for r in submits) < 0.05 * len(submits)
    assert 0 < sum("." not in r["created_at"] for r in records) < 0.05 * len(records)


def test_the_answer_is_what_generate_records_predicts_byte_for_byte(simulator, session) -> None:
    start, end = DAY + 9 * HOUR + timedelta(minutes=13), DAY + 11 * HOUR
    response = fetch(simulator, session, start, end)

    assert response.headers["Content-Type"] == "application/json"
    assert response.content == serialize_records(generate_records(simulator.config, start, end))


def test_generate_records_takes_naive_times_as_utc_and_returns_copies(simulator) -> None:
    aware = generate_records(simulator.config, DAY, DAY + HOUR)
    naive = generate_records(simulator.config, DAY.replace(tzinfo=None), (DAY + HOUR).replace(tzinfo=None))
    assert naive == aware

    aware[0]["lti_user_id"] = "changed"
    assert generate_records(simulator.config, DAY, DAY + HOUR)[0]["lti_user_id"] != "changed"


# --- determinism and windows ----------------------------------------------------------------


def test_windows_that_split_an_hour_concatenate_to_the_whole_hour(simulator, session) -> None:
    start, middle, end = DAY + 14 * HOUR, DAY + 14 * HOUR + timedelta(minutes=25), DAY + 15 * HOUR
    whole = records_of(simulator, session, start, end)
    first = records_of(simulator, session, start, middle)
    second = records_of(simulator, session, middle, end)

    # Closed intervals: a record at exactly ``middle`` comes back twice.
    assert first + [r for r in second if created_at(r) > middle] == whole
    assert first
    assert second


def test_the_same_config_gives_the_same_records_whatever_was_asked_before(simulator, session) -> None:
    day = records_of(simulator, session, DAY, DAY + 24 * HOUR)
    by_hour = [
        r for h in range(24) for r in records_of(simulator, session, DAY + h * HOUR, DAY + (h + 1) * HOUR)
    ]
    with SimulatorServer(SimulatorConfig(client=CLIENT, client_key=CLIENT_KEY)) as other:
        again = records_of(other, session, DAY, DAY + 24 * HOUR)

    # Closed windows: a record on the hour comes back in both windows around it.
    def off_the_hour(records: list[dict]) -> list[dict]:
        return [
            r for r in records if created_at(r).replace(minute=0, second=0, microsecond=0) != created_at(r)
        ]

    assert off_the_hour(by_hour) == off_the_hour(day)
    assert again == day


def test_the_seed_and_the_date_change_the_records(simulator) -> None:
    simulator.configure(defects={})
    base = generate_records(simulator.config, DAY, DAY + HOUR)
    next_day = generate_records(simulator.config, DAY + 24 * HOUR, DAY + 25 * HOUR)
    simulator.configure(seed=simulator.config.seed + 1)
    other_seed = generate_records(simulator.config, DAY, DAY + HOUR)

    shared_times = {r["created_at"][11:] for r in base} & {r["created_at"][11:] for r in next_day}
    assert len(shared_times) < 0.05 * len(base)
    assert {r["lti_user_id"] for r in base}.isdisjoint(r["lti_user_id"] for r in other_seed)


def test_changing_one_defect_share_damages_records_without_moving_the_others(simulator) -> None:
    simulator.configure(defects={})
    clean = generate_records(simulator.config, DAY, DAY + 2 * HOUR)
    simulator.configure(defects={"user_id_null": 0.1})
    damaged = generate_records(simulator.config, DAY, DAY + 2 * HOUR)

    assert len(clean) == len(damaged)
    differences = [(a, b) for a, b in zip(clean, damaged, strict=True) if a != b]
    assert differences
    assert all(b == {**a, "lti_user_id": None} for a, b in differences)


def test_the_window_is_closed_at_both_ends(simulator, session) -> None:
    hour = records_of(simulator, session, DAY + 8 * HOUR, DAY + 9 * HOUR)
    target = hour[len(hour) // 2]
    moment = created_at(target)

    assert records_of(simulator, session, moment, moment) == [r for r in hour if created_at(r) == moment]
    assert records_of(simulator, session, DAY + 8 * HOUR, moment)[-1] == target
    assert records_of(simulator, session, moment, DAY + 9 * HOUR)[0] == target


def test_every_record_lies_in_the_window_asked_for(simulator, session) -> None:
    start, end = DAY + 10 * HOUR + timedelta(seconds=7.5), DAY + 10 * HOUR + timedelta(minutes=3, seconds=1)
    records = records_of(simulator, session, start, end)

    assert records
    assert all(start <= created_at(r) <= end for r in records)
    assert len(records) == sum(
        start <= created_at(r) <= end for r in generate_records(simulator.config, DAY, DAY_END)
    )


def test_empty_dates_have_no_records(simulator, session) -> None:
    simulator.configure(empty_dates=[DAY.date().isoformat()])

    assert records_of(simulator, session, DAY, DAY_END) == []
    next_hour = records_of(simulator, session, DAY + 23 * HOUR, DAY + 25 * HOUR - timedelta(microseconds=1))
    assert len(next_hour) == hourly_counts(15_000)[0]


# --- volume and rhythm ----------------------------------------------------------------------


@pytest.mark.parametrize("per_day", [0, 1, 23, 15_000, 999_999, 1_000_000])
def test_hourly_counts_sum_to_the_daily_volume_exactly(per_day) -> None:
    counts = hourly_counts(per_day)
    assert len(counts) == 24
    assert sum(counts) == per_day


def test_a_day_has_the_configured_volume_and_a_daily_rhythm(simulator, session) -> None:
    simulator.configure(records_per_day=40_000)
    records = records_of(simulator, session, DAY, DAY_END)
    per_hour = Counter(created_at(r).hour for r in records)

    assert len(records) == 40_000
    assert max(per_hour[h] for h in range(0, 4)) < min(per_hour[h] for h in range(9, 20)) / 3
    assert max(per_hour, key=per_hour.__getitem__) in range(12, 21)


def test_a_peak_hour_at_a_million_a_day_is_served_whole(simulator, session) -> None:
    simulator.configure(records_per_day=1_000_000)
    records = records_of(simulator, session, DAY + 17 * HOUR, DAY + 18 * HOUR - timedelta(microseconds=1))

    assert len(records) == hourly_counts(1_000_000)[17] > 60_000
    assert len({r.get("lti_user_id") for r in records}) > 5_000


# --- defects --------------------------------------------------------------------------------


def _passback_is(record: dict, check: Callable[[dict], bool]) -> bool:
    parsed = passback_dict(record.get("passback_params"))
    return parsed is not None and check(parsed)


DEFECT_SHOWS: dict[str, Callable[[dict, datetime, datetime], bool]] = {
    "user_id_missing": lambda r, *_: "lti_user_id" not in r,
    "user_id_null": lambda r, *_: "lti_user_id" in r and r["lti_user_id"] is None,
    "user_id_short": lambda r, *_: isinstance(r.get("lti_user_id"), str) and len(r["lti_user_id"]) < 32,
    "user_id_long": lambda r, *_: isinstance(r.get("lti_user_id"), str) and len(r["lti_user_id"]) > 32,
    "passback_missing": lambda r, *_: "passback_params" not in r,
    "passback_empty": lambda r, *_: r.get("passback_params") == "",
    "passback_not_dict": lambda r, *_: (
        bool(r.get("passback_params")) and passback_dict(r["passback_params"]) is None
    ),
    "passback_missing_keys": lambda r, *_: _passback_is(r, lambda p: not set(PASSBACK_KEYS) <= set(p)),
    "is_correct_on_run": lambda r, *_: r["attempt_type"] == "run" and r["is_correct"] is not None,
    "is_correct_null_on_submit": lambda r, *_: r["attempt_type"] == "submit" and r["is_correct"] is None,
    "outside_window": lambda r, start, end: not start <= created_at(r) <= end,
}


def test_every_defect_kind_is_covered() -> None:
    assert set(DEFECT_SHOWS) == set(DEFECT_KINDS)


@pytest.mark.parametrize("kind", DEFECT_KINDS)
def test_each_defect_appears_at_its_share_and_alone(simulator, session, kind) -> None:
    simulator.configure(defects={kind: 0.2})
    start, end = DAY + 10 * HOUR, DAY + 16 * HOUR
    records = records_of(simulator, session, start, end)
    shows = DEFECT_SHOWS[kind]
    damaged = [r for r in records if shows(r, start, end)]

    assert len(records) > 4_000
    assert 0.17 <= len(damaged) / len(records) <= 0.23
    assert all(is_clean(r, start, end) for r in records if not shows(r, start, end))


def test_records_outside_the_window_are_moved_just_outside_and_stay_sorted(simulator, session) -> None:
    simulator.configure(defects={"outside_window": 0.1})
    start, end = DAY + 12 * HOUR, DAY + 13 * HOUR - timedelta(microseconds=1)
    records = records_of(simulator, session, start, end)
    outside = [created_at(r) for r in records if not start <= created_at(r) <= end]

    assert len(records) == hourly_counts(15_000)[12]
    assert outside
    assert all(
        start - timedelta(seconds=5) <= t < start or end < t <= end + timedelta(seconds=5) for t in outside
    )
    assert [r["created_at"] for r in records] == sorted(r["created_at"] for r in records)


def test_not_a_dict_passbacks_include_hostile_strings(simulator) -> None:
    simulator.configure(defects={"passback_not_dict": 1.0})
    passbacks = {r["passback_params"] for r in generate_records(simulator.config, DAY, DAY + 2 * HOUR)}

    assert "__import__('os').system('touch /tmp/pwned')" in passbacks
    assert "[1, 2, 3]" in passbacks
    assert any(p.startswith("{'oauth_consumer_key': ") for p in passbacks), "truncated literals"


def test_the_default_mix_has_a_few_defects_mostly_null_user_ids(simulator, session) -> None:
    records = records_of(simulator, session, DAY, DAY_END)
    dirty = [r for r in records if not is_clean(r, DAY, DAY_END)]
    nulls = [r for r in records if DEFECT_SHOWS["user_id_null"](r)]

    assert 0.005 <= len(dirty) / len(records) <= 0.03
    assert 0.003 <= len(nulls) / len(records) <= 0.008


# --- faults ---------------------------------------------------------------------------------


def test_an_error_fault_answers_its_status_for_its_number_of_times(simulator, session) -> None:
    simulator.set_faults([{"kind": "error", "times": 2}, {"kind": "error", "status": 500, "times": 1}])

    statuses = [fetch(simulator, session, DAY, DAY + HOUR).status_code for _ in range(4)]

    assert statuses == [503, 503, 500, 200]
    assert [(f["times_left"], f["fired"]) for f in simulator.stats()["faults"]] == [(0, 2), (0, 1)]


def test_a_rate_limit_fault_sends_retry_after(simulator, session) -> None:
    simulator.set_faults(
        [{"kind": "rate_limit", "times": 1}, {"kind": "rate_limit", "retry_after": 7, "times": 1}]
    )

    first, second = fetch(simulator, session, DAY, DAY + HOUR), fetch(simulator, session, DAY, DAY + HOUR)

    assert (first.status_code, first.headers["Retry-After"]) == (429, "1")
    assert (second.status_code, second.headers["Retry-After"]) == (429, "7")
    assert "error" in first.json()


def test_a_cut_body_fails_on_the_client_and_the_next_request_works(simulator, session) -> None:
    simulator.set_faults([{"kind": "cut_body", "times": 1}])

    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        fetch(simulator, session, DAY, DAY + HOUR)
    assert fetch(simulator, session, DAY, DAY + HOUR).json() == generate_records(
        simulator.config, DAY, DAY + HOUR
    )


def test_a_malformed_body_is_complete_http_but_not_json(simulator, session) -> None:
    simulator.set_faults([{"kind": "malformed_json", "times": 1}])

    response = fetch(simulator, session, DAY, DAY + HOUR)

    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(response.content)
    with pytest.raises(requests.JSONDecodeError):
        response.json()
    assert fetch(simulator, session, DAY, DAY + HOUR).status_code == 200


def test_a_stall_trips_the_client_timeout_without_blocking_other_requests(simulator, session) -> None:
    simulator.set_faults([{"kind": "stall", "seconds": 2, "times": 1}])

    with pytest.raises(requests.ReadTimeout):
        fetch(simulator, session, DAY, DAY + HOUR, timeout=0.5)
    # Answered while the stalled request still sleeps: requests have their own threads.
    started = time.monotonic()
    with requests.Session() as other:
        assert fetch(simulator, other, DAY, DAY + HOUR, timeout=10).status_code == 200
    assert time.monotonic() - started < 1.5


def test_latency_is_added_to_every_api_answer(simulator, session) -> None:
    simulator.configure(latency_ms=400)

    started = time.monotonic()
    assert fetch(simulator, session, DAY, DAY + HOUR, client_key="wrong").status_code == 403
    assert time.monotonic() - started >= 0.35


def test_a_probable_fault_fires_on_some_requests_the_same_way_each_run(simulator, session) -> None:
    rules = [{"kind": "error", "times": None, "probability": 0.5}]

    def statuses() -> list[int]:
        simulator.set_faults(rules)
        return [fetch(simulator, session, DAY, DAY + timedelta(minutes=1)).status_code for _ in range(40)]

    first = statuses()
    assert 8 <= first.count(503) <= 32
    assert statuses() == first


def test_faults_leave_the_control_endpoints_alone(simulator, session) -> None:
    simulator.set_faults([{"kind": "error", "times": 1}, {"kind": "stall", "seconds": 30, "times": None}])

    for method, path in [("GET", "health"), ("GET", "config"), ("GET", "stats")]:
        assert (
            session.request(method, f"{simulator.base_url}/_simulator/{path}", timeout=5).status_code == 200
        )
    assert simulator.stats()["faults"][0]["times_left"] == 1
    assert fetch(simulator, session, DAY, DAY + HOUR).status_code == 503


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "explode"},
        {"kind": "error", "status": 200},
        {"kind": "rate_limit", "status": 429},
        {"kind": "stall", "seconds": -1},
        {"kind": "cut_body", "times": -1},
        {"kind": "error", "probability": 2},
        "error",
    ],
)
def test_an_invalid_fault_rule_is_refused(simulator, session, rule) -> None:
    response = session.put(f"{simulator.base_url}/_simulator/config", json={"faults": [rule]}, timeout=5)

    assert response.status_code == 400
    assert simulator.config.faults == ()


# --- control endpoints and statistics --------------------------------------------------------


def test_wrong_credentials_count_as_exactly_one_request(simulator, session) -> None:
    before = simulator.stats()["requests"]["total"]

    fetch(simulator, session, DAY, DAY + HOUR, client_key="wrong")

    stats = session.get(f"{simulator.base_url}/_simulator/stats", timeout=5).json()
    assert stats["requests"]["total"] == before + 1
    assert stats["requests"]["by_status"] == {"403": 1}
    assert stats["requests"]["by_outcome"] == {"forbidden": 1}


def test_stats_count_requests_by_status_and_outcome_and_reset_zeroes_them(simulator, session) -> None:
    simulator.set_faults([{"kind": "cut_body", "times": 1}, {"kind": "rate_limit", "times": 1}])
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        fetch(simulator, session, DAY, DAY + HOUR)
    fetch(simulator, session, DAY, DAY + HOUR)
    served = len(fetch(simulator, session, DAY, DAY + HOUR).json())
    fetch(simulator, session, DAY, DAY + HOUR, client_key="")

    stats = simulator.stats()
    assert stats["requests"] == {
        "total": 4,
        "by_status": {"200": 2, "401": 1, "429": 1},
        "by_outcome": {"cut_body": 1, "ok": 1, "rate_limit": 1, "unauthorized": 1},
    }
    assert stats["records_served"] == 2 * served

    session.post(f"{simulator.base_url}/_simulator/reset", timeout=5).raise_for_status()
    assert simulator.stats()["requests"]["total"] == 0
    assert simulator.stats()["faults"] == []


def test_config_can_be_read_and_changed_over_http_without_showing_credentials(simulator, session) -> None:
    url = f"{simulator.base_url}/_simulator/config"
    changed = session.put(
        url, json={"records_per_day": 500, "latency_ms": 0, "empty_dates": ["2024-01-01"]}, timeout=5
    )

    assert changed.status_code == 200
    shown = session.get(url, timeout=5).json()
    assert shown == changed.json()
    assert (shown["records_per_day"], shown["empty_dates"], shown["seed"]) == (
        500,
        ["2024-01-01"],
        simulator.config.seed,
    )
    assert shown["defects"]["user_id_null"] == 0.005, "settings not given are kept"
    assert CLIENT_KEY not in session.get(url, timeout=5).text
    assert len(records_of(simulator, session, DAY, DAY_END)) == 500


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1]",
        b'{"client_key": "stolen"}',
        b'{"records_per_day": -1}',
        b'{"records_per_day": "many"}',
        b'{"defects": {"typo": 0.1}}',
        b'{"defects": {"user_id_null": 1.5}}',
        b'{"empty_dates": ["05.03.2024"]}',
    ],
)
def test_an_invalid_config_change_is_refused_and_changes_nothing(simulator, session, body) -> None:
    before = simulator.config

    response = session.put(f"{simulator.base_url}/_simulator/config", data=body, timeout=5)

    assert response.status_code == 400
    assert response.json()["detail"]
    assert simulator.config == before


def test_reset_restores_the_start_up_config(simulator, session) -> None:
    startup = simulator.config
    simulator.configure(records_per_day=10, seed=1, defects={}, latency_ms=5)

    answer = session.post(f"{simulator.base_url}/_simulator/reset", timeout=5)

    assert answer.json() == startup.to_json()
    assert simulator.config == startup


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/_simulator/health", 200),
        ("GET", "/nowhere", 404),
        ("POST", "/api/statistics", 405),
        ("GET", "/_simulator/reset", 405),
        ("PUT", "/_simulator/stats", 405),
    ],
)
def test_routes(simulator, session, method, path, status) -> None:
    response = session.request(method, simulator.base_url + path, timeout=5)

    assert response.status_code == status
    assert isinstance(response.json(), dict)


def test_connections_are_kept_alive(simulator) -> None:
    address = urlsplit(simulator.base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=5)
    try:
        sockets = []
        for _ in range(3):
            connection.request("GET", "/_simulator/health")
            response = connection.getresponse()
            response.read()
            assert not response.will_close
            sockets.append(connection.sock)
        assert sockets[0] is sockets[1] is sockets[2]
    finally:
        connection.close()


# --- the server object and the command ------------------------------------------------------


def test_stop_cuts_a_stall_short_and_leaves_no_thread_behind() -> None:
    simulator = SimulatorServer(SimulatorConfig(client=CLIENT, client_key=CLIENT_KEY)).start()
    simulator.set_faults([{"kind": "stall", "seconds": 60}])
    outcome: list[object] = []

    def stalled_request() -> None:
        try:
            with requests.Session() as session:
                outcome.append(fetch(simulator, session, DAY, DAY + HOUR).status_code)
        except requests.RequestException as error:
            outcome.append(error)

    client = threading.Thread(target=stalled_request)
    client.start()
    while simulator.stats()["requests"]["total"] == 0:
        time.sleep(0.01)
    started = time.monotonic()
    simulator.stop()
    client.join(timeout=30)

    assert time.monotonic() - started < 10
    assert outcome
    assert not client.is_alive()
    assert f"simulator-{simulator.base_url}" not in {thread.name for thread in threading.enumerate()}
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{simulator.base_url}/_simulator/health", timeout=2)


def _start_cli(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    """Start the command on a free port; return it and its base URL once it serves."""
    environment = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "devservices.simulator", "--port", "0", *args],
        cwd=PROJECT_ROOT,
        env=environment,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in process.stderr:
        found = re.search(r"serving the statistics API on (http://\S+)", line)
        if found:
            return process, found.group(1)
    raise AssertionError(f"the simulator exited with {process.wait()} before serving")


def test_the_command_serves_and_stops_cleanly_on_sigterm() -> None:
    process, base_url = _start_cli(
        "--client",
        "cli-client",
        "--records-per-day",
        "2400",
        "--defect",
        "user_id_null=0.5",
        env={"LEARNING_PLATFORM_SIMULATOR_CLIENT_KEY": "cli-Secret-key"},
    )
    try:
        params = {"client": "cli-client", "client_key": "cli-Secret-key"}
        params |= {"start": api_time(DAY), "end": api_time(DAY + HOUR)}
        records = requests.get(f"{base_url}/api/statistics", params=params, timeout=10).json()
        config = requests.get(f"{base_url}/_simulator/config", timeout=10).json()
    finally:
        process.send_signal(signal.SIGTERM)
        log = process.communicate(timeout=20)[1]

    assert process.returncode == 0
    assert len(records) == hourly_counts(2400)[0]
    assert config["defects"]["user_id_null"] == 0.5
    assert config["defects"]["user_id_missing"] == 0.001, "the default mix stays under --defect"
    assert "GET /api/statistics start=2024-03-05 00:00:00.000000" in log
    assert "cli-Secret-key" not in log
    assert "client_key" not in log


def test_the_command_stops_on_sigint_too() -> None:
    process, base_url = _start_cli("--no-defects", "--fault", '{"kind": "error", "times": 1}')
    try:
        config = requests.get(f"{base_url}/_simulator/config", timeout=10).json()
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)

    assert process.returncode == 0
    assert set(config["defects"].values()) == {0.0}
    assert config["faults"][0]["kind"] == "error"


@pytest.mark.parametrize(
    "args", [["--defect", "user_id_null"], ["--defect", "typo=0.1"], ["--fault", "{bad"], ["--port", "x"]]
)
def test_the_command_refuses_bad_options(args) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "devservices.simulator", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 2
    assert "usage:" in result.stderr
