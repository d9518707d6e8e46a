"""The statistics API client asks for the next window while the current one is landed."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from include.common.intervals import Interval
from include.learning_platform.api import LearningPlatformAuthError, LearningPlatformClient
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
