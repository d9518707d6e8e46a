"""The statistics API client asks for the next window while the current one is landed."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import pytest

from include.common.http import RetryPolicy
from include.common.intervals import Interval
from include.learning_platform.api import LearningPlatformAuthError, LearningPlatformClient, MalformedAnswer
from tests.include.learning_platform.stages import DAY, HOUR

WINDOWS = list(Interval(DAY.start, DAY.start + 4 * HOUR).windows(HOUR))


def _answered(simulator) -> int:
    return simulator.stats()["requests"]["total"]


def _wait_for_answers(simulator, count: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while _answered(simulator) < count:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_the_next_window_is_answered_while_one_is_landed_and_each_is_asked_once(
    simulator, api_client
) -> None:
    before = _answered(simulator)
    seen: list[tuple[Interval, bool]] = []

    def land(window: Interval, records: Iterator[str]) -> int:
        count = sum(1 for _ in records)
        position = WINDOWS.index(window)
        if position + 1 < len(WINDOWS):
            # Still landing this window: the API has answered the next one too.
            seen.append((window, _wait_for_answers(simulator, before + position + 2)))
        return count

    landed = list(api_client.stream_windows(WINDOWS, land))

    assert [window for window, _ in landed] == WINDOWS
    assert all(count > 0 for _, count in landed)
    assert seen == [(window, True) for window in WINDOWS[:-1]]
    assert _answered(simulator) == before + len(WINDOWS)


def test_refused_credentials_cost_one_request_not_one_per_window(simulator) -> None:
    before = _answered(simulator)
    with (
        LearningPlatformClient(simulator.base_url, "test-client", "wrong-key") as client,
        pytest.raises(LearningPlatformAuthError),
    ):
        list(client.stream_windows(WINDOWS, lambda window, records: sum(1 for _ in records)))

    assert _answered(simulator) == before + 1


class _EchoingProxy(http.server.BaseHTTPRequestHandler):
    """A misbehaving gateway: 200 with an invalid JSON array that quotes the request, key and all."""

    def do_GET(self) -> None:
        body = f'[{{"error": "upstream failed for {self.path}"}}, upstream timeout]'.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echoing_proxy() -> Iterator[str]:
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoingProxy) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_address[1]}"
        server.shutdown()


def test_a_malformed_answer_keeps_the_body_without_the_client_key(echoing_proxy) -> None:
    key = "k3y/with+plus=Secret"
    retry = RetryPolicy(attempts=2, initial_wait_s=0.01, max_wait_s=0.01)
    with (
        LearningPlatformClient(echoing_proxy, "test-client", key, retry=retry) as client,
        pytest.raises(MalformedAnswer) as raised,
    ):
        list(client.stream_windows(WINDOWS[:1], lambda window, records: sum(1 for _ in records)))

    answer = raised.value
    assert answer.window == WINDOWS[0]
    assert answer.head.startswith(b'[{"error": "upstream failed for /api/statistics?')
    assert answer.excerpt == "upstream timeout]"
    assert answer.head.endswith(b"}, upstream timeout]")
    assert b"client_key=***" in answer.head
    assert "Secret" not in answer.head.decode() + answer.excerpt + str(answer)
