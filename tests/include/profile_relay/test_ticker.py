"""The generator's schedule, on a fake clock: tick k is due at start + k × interval, never earlier."""

from __future__ import annotations

import pytest

from include.profile_relay.generate import Ticker
from tests.include.profile_relay.clocks import FakeClock


def released(clock: FakeClock, ticker: Ticker, work: list[float]) -> list[float]:
    """When each tick was released, relative to the first, with ``work[k]`` seconds spent after tick k."""
    times = []
    for k, spent in enumerate(work):
        ticker.wait(k)
        times.append(clock.now)
        clock.advance(spent)
    return [t - times[0] for t in times]


def test_the_work_between_ticks_does_not_add_up_to_drift() -> None:
    clock = FakeClock()
    ticker = Ticker(0.5, clock=clock, sleep=clock.sleep)

    times = released(clock, ticker, [0.13] * 1000)

    assert times == pytest.approx([k * 0.5 for k in range(1000)])
    assert ticker.max_lateness == 0


def test_after_a_slow_tick_the_overdue_ticks_come_at_once_and_none_early() -> None:
    clock = FakeClock()
    ticker = Ticker(0.5, clock=clock, sleep=clock.sleep)

    # Tick 2's work takes 1.7 s: ticks 3, 4 and 5 (due at 1.5, 2.0, 2.5) are overdue at 2.7.
    times = released(clock, ticker, [0.1, 0.1, 1.7, 0.01, 0.01, 0.01, 0.1, 0.1])

    assert times == pytest.approx([0, 0.5, 1.0, 2.7, 2.71, 2.72, 3.0, 3.5])
    assert all(time >= k * 0.5 - 1e-9 for k, time in enumerate(times))
    assert ticker.max_lateness == pytest.approx(1.2)


def test_a_zero_interval_never_sleeps() -> None:
    clock = FakeClock()
    ticker = Ticker(0, clock=clock, sleep=clock.sleep)

    released(clock, ticker, [0.001] * 100)

    assert clock.sleeps == []
    assert ticker.max_lateness == 0


def test_a_tick_is_not_released_before_its_time_when_sleep_wakes_early() -> None:
    clock = FakeClock()
    # A sleep cut short (a signal arrived): at most 0.2 s slept per call, the ticker sleeps again.
    ticker = Ticker(1.0, clock=clock, sleep=lambda seconds: clock.sleep(min(seconds, 0.2)))

    times = released(clock, ticker, [0.0, 0.0, 0.0])

    assert times == pytest.approx([0.0, 1.0, 2.0])
    assert len(clock.sleeps) == 10
