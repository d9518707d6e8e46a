"""Specs of runs as the DAG would build them, for the relay's tests."""

from __future__ import annotations

from datetime import date

from include.profile_relay.settings import RelaySpec

REFERENCE_DATE = date(2026, 12, 6)


def relay_spec(run_id: str = "manual__2026-12-06", **params) -> RelaySpec:
    """A run's spec; interval 0 unless a test says otherwise."""
    return RelaySpec.from_params(
        {"count": 100, "interval_seconds": 0, **params}, run_id=run_id, reference_date=REFERENCE_DATE
    )
