"""The profile receiver: accepts by idempotency key, keeps what it accepted, and fails on command."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from devservices.environment import PROJECT_ROOT
from devservices.postgres import free_port
from devservices.profile_receiver import TOKEN_ENV, ProfileReceiver

TIMEOUT = (3.0, 10.0)


def batch(*keys: str, name: str = "Иванов Иван Иванович") -> dict[str, Any]:
    return {"profiles": [{"key": key, "profile": {"name": name, "key_was": key}} for key in keys]}


def post(
    receiver: ProfileReceiver, body: object, *, timeout: tuple[float, float] = TIMEOUT, **kwargs: Any
) -> requests.Response:
    return requests.post(f"{receiver.url}/profiles", json=body, timeout=timeout, **kwargs)


def statuses(response: requests.Response) -> list[tuple[str, str]]:
    assert response.status_code == 200, response.text
    return [(result["key"], result["status"]) for result in response.json()["results"]]


def refuses_connections(receiver: ProfileReceiver) -> bool:
    try:
        socket.create_connection((receiver.host, receiver.port), timeout=3).close()
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:
        return False  # taken into the backlog of a socket closing just then: not down yet
    return False


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[ProfileReceiver]:
    with ProfileReceiver(tmp_path / "receiver.sqlite") as receiver:
        yield receiver


def test_a_batch_is_acknowledged_in_order_and_listed_as_accepted(receiver: ProfileReceiver) -> None:
    response = post(receiver, batch("run/3", "run/1", "run/2"))

    assert statuses(response) == [("run/3", "accepted"), ("run/1", "accepted"), ("run/2", "accepted")]
    assert receiver.accepted_keys() == ["run/3", "run/1", "run/2"]
    listed = requests.get(f"{receiver.url}/accepted", timeout=TIMEOUT).json()
    assert listed == {"count": 3, "keys": ["run/3", "run/1", "run/2"], "duplicate_posts": 0}


def test_a_key_posted_again_is_a_duplicate_and_the_first_profile_is_kept(receiver: ProfileReceiver) -> None:
    post(receiver, batch("run/1", "run/2", name="Первый"))

    again = post(receiver, batch("run/2", "run/3", "run/3", name="Второй"))

    assert statuses(again) == [("run/2", "duplicate"), ("run/3", "accepted"), ("run/3", "duplicate")]
    assert receiver.accepted_keys() == ["run/1", "run/2", "run/3"]
    assert receiver.duplicate_posts() == {"run/2": 1, "run/3": 1}
    assert receiver.accepted()["run/2"] == {"name": "Первый", "key_was": "run/2"}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"{not json", "not JSON"),
        (b'{"items": []}', '{"profiles": [{"key"'),
        (b'{"profiles": []}', "'profiles' is empty"),
        (b'{"profiles": [{"key": "a", "profile": {}}, {"profile": {}}]}', "profiles[1]: 'key'"),
        (b'{"profiles": [{"key": "a", "profile": "Ivanov"}]}', "profiles[0] (key 'a'): 'profile'"),
    ],
)
def test_a_malformed_body_is_refused_with_a_message_and_nothing_is_stored(
    receiver: ProfileReceiver, body: bytes, detail: str
) -> None:
    response = requests.post(
        f"{receiver.url}/profiles", data=body, headers={"Content-Type": "application/json"}, timeout=TIMEOUT
    )

    assert response.status_code == 400
    assert detail in response.json()["detail"]
    assert receiver.accepted_keys() == []


def test_with_a_token_every_endpoint_but_health_needs_it(tmp_path: Path) -> None:
    with ProfileReceiver(tmp_path / "receiver.sqlite", token="s3cret-token") as receiver:
        missing = post(receiver, batch("run/1"))
        wrong = post(receiver, batch("run/1"), headers={"Authorization": "Bearer s3cret-tokeX"})
        listing = requests.get(f"{receiver.url}/accepted", timeout=TIMEOUT)
        control = requests.post(f"{receiver.url}/control", json={"mode": "http_500"}, timeout=TIMEOUT)
        health = requests.get(f"{receiver.url}/health", timeout=TIMEOUT)
        right = post(receiver, batch("run/1"), headers={"Authorization": "Bearer s3cret-token"})

        assert [r.status_code for r in (missing, wrong, listing, control)] == [401, 401, 401, 401]
        assert missing.headers["WWW-Authenticate"] == "Bearer"
        assert "s3cret" not in missing.text
        assert health.status_code == 200
        assert statuses(right) == [("run/1", "accepted")]
        assert receiver.fault_state()["fault"] is None


def test_what_was_accepted_survives_a_restart_of_the_receiver(tmp_path: Path) -> None:
    store = tmp_path / "receiver.sqlite"
    with ProfileReceiver(store) as receiver:
        post(receiver, batch("run/1", "run/2"))

    with ProfileReceiver(store) as restarted:
        again = post(restarted, batch("run/2", "run/3"))
        assert statuses(again) == [("run/2", "duplicate"), ("run/3", "accepted")]
        assert restarted.accepted_keys() == ["run/1", "run/2", "run/3"]


def test_http_500_fails_the_next_batches_without_storing_them(receiver: ProfileReceiver) -> None:
    receiver.set_fault("http_500", times=2)

    first, second = post(receiver, batch("run/1")), post(receiver, batch("run/2"))
    third = post(receiver, batch("run/3"))

    assert [first.status_code, second.status_code] == [500, 500]
    assert "not stored" in first.json()["detail"]
    assert statuses(third) == [("run/3", "accepted")]
    assert receiver.accepted_keys() == ["run/3"]


def test_timeout_holds_the_batch_unanswered_past_the_clients_read_timeout(receiver: ProfileReceiver) -> None:
    receiver.set_fault("timeout", times=1)

    with pytest.raises(requests.ReadTimeout):
        post(receiver, batch("run/1"), timeout=(3.0, 0.5))
    after = post(receiver, batch("run/2"))

    assert statuses(after) == [("run/2", "accepted")]
    assert receiver.accepted_keys() == ["run/2"]


def test_drop_after_accept_stores_the_batch_then_closes_without_an_answer(receiver: ProfileReceiver) -> None:
    receiver.set_fault("drop_after_accept", times=1)

    with pytest.raises(requests.ConnectionError):
        post(receiver, batch("run/1", "run/2"))
    resent = post(receiver, batch("run/1", "run/2"))

    assert receiver.accepted_keys() == ["run/1", "run/2"]
    assert statuses(resent) == [("run/1", "duplicate"), ("run/2", "duplicate")]


def test_down_closes_the_listening_socket_and_open_connections_until_cleared(
    receiver: ProfileReceiver,
) -> None:
    with requests.Session() as session:
        # A kept-alive connection too: a server that is down answers nothing on it either.
        assert session.get(f"{receiver.url}/health", timeout=TIMEOUT).status_code == 200
        port = receiver.port

        receiver.set_fault("down", seconds=600)

        assert refuses_connections(receiver)
        with pytest.raises(requests.ConnectionError):
            session.post(f"{receiver.url}/profiles", json=batch("run/1"), timeout=TIMEOUT)
        assert receiver.is_down()

        receiver.clear_faults()

        assert receiver.port == port
        assert session.get(f"{receiver.url}/health", timeout=TIMEOUT).status_code == 200
        assert receiver.accepted_keys() == []


def test_down_set_over_http_answers_first_then_listens_again_by_itself(receiver: ProfileReceiver) -> None:
    answer = requests.post(f"{receiver.url}/control", json={"mode": "down", "seconds": 0.3}, timeout=TIMEOUT)
    assert answer.json() == {"mode": "down", "seconds": 0.3}

    # Bounded, not timed: the outage is 0.3 s, and this only gives up after a minute. The answer
    # leaves before the outage begins, so wait for it to have begun, then to have ended.
    deadline = time.monotonic() + 60
    while (receiver.outages() == 0 or receiver.is_down()) and time.monotonic() < deadline:
        time.sleep(0.05)

    assert receiver.outages() == 1
    assert not receiver.is_down()
    assert statuses(post(receiver, batch("run/1"))) == [("run/1", "accepted")]


def test_down_over_http_refuses_connections_once_answered(receiver: ProfileReceiver) -> None:
    answer = requests.post(f"{receiver.url}/control", json={"mode": "down", "seconds": 600}, timeout=TIMEOUT)
    assert answer.status_code == 200

    deadline = time.monotonic() + 60  # the answer leaves before the socket closes
    while not refuses_connections(receiver) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert refuses_connections(receiver)

    receiver.clear_faults()
    assert not refuses_connections(receiver)


@pytest.mark.parametrize(
    ("control", "detail"),
    [
        ({"mode": "slow"}, "mode must be one of"),
        ({"mode": "down"}, "needs 'seconds'"),
        ({"mode": "http_500", "times": 0}, "'times' must be an integer >= 1"),
        ({"mode": "timeout", "seconds": -1}, "'seconds' must be a number > 0"),
    ],
)
def test_an_unknown_fault_is_refused_and_nothing_is_armed(
    receiver: ProfileReceiver, control: dict[str, Any], detail: str
) -> None:
    answer = requests.post(f"{receiver.url}/control", json=control, timeout=TIMEOUT)

    assert answer.status_code == 400
    assert detail in answer.json()["detail"]
    assert receiver.fault_state() == {"fault": None, "down_for_seconds": None}


def test_faults_set_and_cleared_over_http(receiver: ProfileReceiver) -> None:
    armed = requests.post(f"{receiver.url}/control", json={"mode": "http_500", "times": 3}, timeout=TIMEOUT)
    assert armed.json()["fault"] == {"mode": "http_500", "times": 3}
    assert post(receiver, batch("run/1")).status_code == 500

    assert requests.get(f"{receiver.url}/control", timeout=TIMEOUT).json()["fault"]["times"] == 2
    requests.delete(f"{receiver.url}/control", timeout=TIMEOUT)

    assert statuses(post(receiver, batch("run/1"))) == [("run/1", "accepted")]


def test_the_command_line_serves_with_a_token_from_the_environment_until_sigterm(tmp_path: Path) -> None:
    port = free_port()
    store = tmp_path / "cli.sqlite"
    process = subprocess.Popen(
        [sys.executable, "-m", "devservices.profile_receiver", "--port", str(port), "--store", str(store)],
        cwd=PROJECT_ROOT,
        env={**os.environ, TOKEN_ENV: "cli-token"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        listening = process.stdout.readline()
        assert f"http://127.0.0.1:{port}" in listening
        assert "cli-token" not in listening
        url = f"http://127.0.0.1:{port}/profiles"
        refused = requests.post(url, json=batch("run/1"), timeout=TIMEOUT)
        accepted = requests.post(
            url, json=batch("run/1"), headers={"Authorization": "Bearer cli-token"}, timeout=TIMEOUT
        )
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=30)

    assert refused.status_code == 401
    assert statuses(accepted) == [("run/1", "accepted")]
    assert process.returncode == 0, errors
    assert "cli-token" not in errors
