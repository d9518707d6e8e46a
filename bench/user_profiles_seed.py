"""The seed's design of ``user_profiles_relay``, kept as the benchmark's baseline.

The seed ran its three parts as processes of one tree handing profiles over through
``multiprocessing.Queue``: generator → queue → processor (ages 30–40) → queue → sender. Nothing
is durable: a crash loses whatever is in a queue, and the sender cannot tell the receiver's
acknowledgement from a lost one. It is the fastest a relay of these three stages can be on one
machine, which is what our durable relay (three tasks handing over through PostgreSQL) is
compared with.

So that the difference measured is the design and nothing else, the lane does exactly our work
per profile: the same profiles (a ``make_profile(seq)`` built from the same factory, seeded the
same way), the same age on the same reference date, and a real send: batches of the same size
POSTed to the same receiver, with the same idempotency keys, each profile's line formatted as
our sender logs it. Two liberties, both in the seed's favour or neutral: the stages end on a
sentinel passed down the queues (the seed ended on an Event, which let its sender stop before its
processor did), and the queues carry each profile's tick time, which the measurement needs.
"""

from __future__ import annotations

import http.client
import json
import logging
import multiprocessing
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.services import stages_together

# A queue's consumer learns from this that its producer is done.
_DONE = None
# How long a stage waits for its upstream before the lane is declared stuck: a bench must end.
STAGE_TIMEOUT_S = 600
HTTP_TIMEOUT_S = 30


@dataclass(frozen=True, slots=True)
class RelayRun:
    """One run of a relay, as either design takes it."""

    run_id: str
    count: int
    interval_s: float
    age_min: int
    age_max: int
    reference_date: date
    batch_size: int
    locale: str
    receiver_url: str
    # The receiver's bearer token, if it asks for one.
    token: str | None = None


def run_seed_design(
    run: RelayRun,
    make_profile_maker: Callable[[], Callable[[int], Any]],
    *,
    sent_log: Path,
) -> dict[str, Any]:
    """The three stages as three ``spawn``ed processes joined by two queues; what each did.

    ``make_profile_maker`` is picklable and called once in the generator's process: it returns
    ``make_profile(seq)``, whose profiles have ``seq``, ``birthdate``, ``name``, ``sex``, ``job`` and
    ``data`` (``include.profile_relay.profiles.Profile``). The clock starts once all three have
    imported what they need (as an Airflow worker has before it runs a task). Returns
    ``{"started_at", "stages": {name: figures}, "ticks": [(seq, t)], "deliveries": [(seq, t)]}``,
    times as epoch seconds.
    """
    context = multiprocessing.get_context("spawn")
    profiles, judged = context.Queue(), context.Queue()
    started_at, reports = stages_together(
        {
            "generate": (_generate, (run, make_profile_maker, profiles)),
            "process": (_process, (run, profiles, judged)),
            "send": (_send, (run, judged, str(sent_log))),
        },
        process_name="seed {}",
    )
    return {
        "started_at": started_at,
        "stages": {name: report["figures"] for name, report in reports.items()},
        "ticks": reports["generate"]["events"],
        "deliveries": reports["send"]["events"],
    }


# Each stage is two steps: what it imports and builds before the start line, and the work timed
# after it (the returned closure): profiles handled, and (seq, epoch time) of what it timed.


def _generate(
    run: RelayRun, make_profile_maker: Callable[[], Callable[[int], Any]], out: multiprocessing.Queue
) -> Callable[[], tuple[int, list[tuple[int, float]]]]:
    make_profile = make_profile_maker()

    def work() -> tuple[int, list[tuple[int, float]]]:
        ticks = []
        start = time.monotonic()
        for seq in range(1, run.count + 1):
            # Tick k at start + k × interval, as our generator schedules them: no drift.
            delay = start + (seq - 1) * run.interval_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            ticked_at = time.time()
            out.put((ticked_at, make_profile(seq)))
            ticks.append((seq, ticked_at))
        out.put(_DONE)
        return run.count, ticks

    return work


def _process(
    run: RelayRun, source: multiprocessing.Queue, out: multiprocessing.Queue
) -> Callable[[], tuple[int, list[tuple[int, float]]]]:
    from include.profile_relay.profiles import age_on

    def work() -> tuple[int, list[tuple[int, float]]]:
        judged = 0
        while (item := source.get(timeout=STAGE_TIMEOUT_S)) is not _DONE:
            _, profile = item
            judged += 1
            if run.age_min <= age_on(profile.birthdate, run.reference_date) <= run.age_max:
                out.put(item)
        out.put(_DONE)
        return judged, []

    return work


def _send(
    run: RelayRun, source: multiprocessing.Queue, sent_log: str
) -> Callable[[], tuple[int, list[tuple[int, float]]]]:
    from include.profile_relay.profiles import age_on
    from include.profile_relay.texts import sent_line

    receiver = _Receiver(run.receiver_url, run.token)
    lines = logging.getLogger("bench.user_profiles.seed")
    handler = logging.FileHandler(sent_log, encoding="utf-8")
    lines.addHandler(handler)
    lines.setLevel(logging.INFO)
    lines.propagate = False

    def work() -> tuple[int, list[tuple[int, float]]]:
        deliveries: list[tuple[int, float]] = []
        done = False
        while not done:
            # Wait for one profile, then take what else is already queued, up to a batch.
            batch = [source.get(timeout=STAGE_TIMEOUT_S)]
            while batch[-1] is not _DONE and len(batch) < run.batch_size:
                try:
                    batch.append(source.get_nowait())
                except queue.Empty:
                    break
            if batch[-1] is _DONE:
                done = True
                batch.pop()
            if not batch:
                continue
            profiles = [profile for _, profile in batch]
            outcomes = receiver.post(
                [{"key": f"{run.run_id}/{profile.seq}", "profile": profile.data} for profile in profiles]
            )
            delivered_at = time.time()
            for profile, outcome in zip(profiles, outcomes, strict=True):
                deliveries.append((profile.seq, delivered_at))
                age = age_on(profile.birthdate, run.reference_date)
                lines.info(sent_line(profile.name, profile.sex, profile.job, age, outcome, run.locale))
        receiver.close()
        handler.close()
        return len(deliveries), deliveries

    return work


class _Receiver:
    """One kept-alive HTTP connection to the receiver: POST a batch, get each profile's outcome."""

    def __init__(self, url: str, token: str | None) -> None:
        parts = urlsplit(url)
        self._path = parts.path.rstrip("/") + "/profiles"
        self._connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=HTTP_TIMEOUT_S)
        self._headers = {"Content-Type": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"

    def post(self, profiles: list[dict[str, Any]]) -> list[str]:
        body = json.dumps({"profiles": profiles}, ensure_ascii=False).encode()
        self._connection.request("POST", self._path, body=body, headers=self._headers)
        response = self._connection.getresponse()
        answer = response.read()
        if response.status != 200:
            raise RuntimeError(f"the receiver answered {response.status}: {answer[:200]!r}")
        results = json.loads(answer)["results"]
        if [result["key"] for result in results] != [profile["key"] for profile in profiles]:
            raise RuntimeError("the receiver's results do not match the batch sent, key by key")
        return [result["status"] for result in results]

    def close(self) -> None:
        self._connection.close()
