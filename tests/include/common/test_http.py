"""The retry policy of HTTP sources: bounded by attempts, and by time where someone waits."""

from __future__ import annotations

import pytest

from include.common.http import RetryPolicy, TransientSourceError


def failing(calls: list[int]) -> None:
    calls.append(len(calls) + 1)
    raise TransientSourceError("HTTP 503 Service Unavailable")


def test_the_attempts_bound_the_retries() -> None:
    calls: list[int] = []
    policy = RetryPolicy(attempts=3, initial_wait_s=0.001, max_wait_s=0.001)

    with pytest.raises(TransientSourceError, match="503"):
        policy.call(lambda: failing(calls), what="GET /x")

    assert calls == [1, 2, 3]
    assert policy.limits == "3 attempts"


def test_a_spent_time_budget_stops_retrying_before_the_attempts_run_out() -> None:
    calls: list[int] = []
    policy = RetryPolicy(attempts=5, initial_wait_s=0.001, max_wait_s=0.001, max_elapsed_s=0)

    with pytest.raises(TransientSourceError, match="503"):
        policy.call(lambda: failing(calls), what="GET /x")

    assert calls == [1]
    assert policy.limits == "5 attempts or 0 s"
