"""A run's three stages as its tasks start them: the run's spec and a way to the store in, a result out.

The task bodies (``tasks.py``) pass a ``connect`` built from the Airflow connection and a receiver
client built from the HTTP connection; the fault harness and the benchmark pass their own, so
what they run is what the tasks run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import psycopg

from include.profile_relay.generate import GenerateResult, run_generator
from include.profile_relay.process import ProcessResult, run_processor
from include.profile_relay.profiles import ProfileFactory
from include.profile_relay.settings import RelaySpec

if TYPE_CHECKING:
    from include.profile_relay.send import ReceiverClient, SendResult

Connect = Callable[[], psycopg.Connection]


def generate(spec: RelaySpec, connect: Connect) -> GenerateResult:
    """Make the run's profiles one per tick and store them; resumes after the last one stored."""
    factory = ProfileFactory(spec.locale, spec.seed, spec.reference_date)
    return run_generator(
        connect, factory, run_id=spec.run_id, count=spec.count, interval=spec.interval_seconds
    )


def process(spec: RelaySpec, connect: Connect) -> ProcessResult:
    """Judge every profile as it is stored and queue the in-range ones, until the run is processed."""
    return run_processor(connect, run_id=spec.run_id, poll_seconds=spec.poll_seconds)


def send(spec: RelaySpec, connect: Connect, receiver: ReceiverClient) -> SendResult:
    """Deliver the queued profiles to ``receiver``, each once, until the run is processed and sent."""
    from include.profile_relay.send import run_sender  # deferred: requests is heavy

    return run_sender(
        connect,
        receiver,
        run_id=spec.run_id,
        batch_size=spec.batch_size,
        locale=spec.locale,
        poll_seconds=spec.poll_seconds,
    )
