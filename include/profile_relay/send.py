"""The send stage of ``user_profiles_relay``: every queued profile delivered to the receiver once.

The decision: a profile leaves the outbox only in the transaction that records the receiver's
acknowledgement of it. One transaction claims up to ``batch_size`` of the run's outbox rows
(``FOR UPDATE SKIP LOCKED``: a second sender, or a retry overlapping a try thought lost, takes
other rows), posts them with one idempotency key each (``<run_id>/<seq>``), and on the answer
deletes them from the outbox and inserts their deliveries before it commits. Anything that goes
wrong before that COMMIT (a refused connection, a timeout, a 5xx, a SIGKILL, PostgreSQL going
away) leaves the rows in the outbox, and they go again with the next batch. When the receiver
stored a batch but its answer was lost, the resend is answered ``duplicate`` for those keys: the
profile is delivered once and recorded once, with the outcome saying so. Exactly once is the
receiver's deduplication plus this transaction; neither gives it alone.

The price: claimed rows stay locked while their POST is in flight (at most the 10 s read
timeout), and a failed batch is resent whole, acknowledged profiles of it included (the
receiver's key makes that harmless). A 4xx is not retried: the receiver says the batch breaks
its contract, and resending it cannot change that, so the task fails with the receiver's words.

The stage ends only when process has ended (``runs.processed_at`` set: nothing more will be
queued) and the run's outbox is empty; it then sets ``runs.sent_at``, strictly after
``processed_at``: the sender finishes after the processor.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import requests

from include.common.failures import ConfigurationError, PermanentFailure
from include.common.postgres import read_sql
from include.profile_relay.reconnect import Backoff, ReconnectingStore
from include.profile_relay.store import RunNotRegistered
from include.profile_relay.texts import sent_line

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).parent / "sql"
RECEIVER_CONN_ID = "profile_receiver"
PROFILES_PATH = "/profiles"
DEFAULT_TIMEOUT = (3.0, 10.0)  # connect, read: a batch of 1,000 profiles is about 1 MB
DEFAULT_OUTAGE_LIMIT = timedelta(minutes=10)
# How long the sender waits with nothing queued while nothing happens upstream (no profile stored,
# the run not processed): as long as process waits for generate, so a stage that failed for good
# fails the others within that time instead of at their 24-hour timeout.
DEFAULT_IDLE_LIMIT = timedelta(minutes=15)
# Answers that mean "not now" rather than "never": retried like a dropped connection.
RETRIED_CLIENT_STATUSES = frozenset({408, 425, 429})
# Of a refusal's body, what goes into the task's error: the receiver's message, not a page.
KEPT_DETAIL_CHARS = 500
# Waits between failed sends: 0.2 s doubling to 5 s.
SEND_BACKOFF = Backoff(initial=0.2)


class SendFailed(RuntimeError):
    """A batch was not acknowledged, for a reason that may not recur; it is sent again.

    ``kind`` is what the run's account counts: ``refused``, ``timeout``, ``reset`` (the connection
    dropped, answered or not), ``http_<status>``, ``connection``.
    """

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


class ReceiverRefused(PermanentFailure):
    """The receiver refused the batch (a 4xx) or answered outside its contract: resending cannot help."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class ReceiverUnavailable(RuntimeError):
    """Every send failed for longer than the stage waits; the task's retry resumes from the outbox."""


class SendingStalled(RuntimeError):
    """Nothing was queued and nothing happened upstream for longer than the sender waits."""


class ReceiverClient:
    """``POST /profiles`` to the receiver, each failure classified; built like an Airflow hook.

    The base URL comes from an Airflow HTTP connection (host, port, schema = http or https); its
    password, if set, is a bearer token. Messages name the receiver by scheme, host and port
    only, never with the token.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        conn_id: str = RECEIVER_CONN_ID,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        parts = urlsplit(base_url.rstrip("/"))
        self.address = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        self._url = base_url.rstrip("/") + PROFILES_PATH
        self._conn_id = conn_id
        self._timeout = timeout
        self._session = session or requests.Session()
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"

    @classmethod
    def from_airflow(cls, conn_id: str = RECEIVER_CONN_ID, *, param: str = "receiver") -> ReceiverClient:
        """The client of the Airflow connection ``conn_id`` (read when the task runs, never at parse).

        ``param`` names the DAG param that chose ``conn_id``, for the error when it is undefined.
        """
        from airflow.sdk import Connection  # deferred: keeps this module importable without Airflow
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            connection = Connection.get(conn_id)
        except AirflowNotFoundException:
            raise ConfigurationError(
                f"the Airflow connection '{conn_id}' is not defined: define it (type HTTP: host, port, "
                f"schema http or https, password = the receiver's token if it needs one), or name another "
                f"with the param '{param}'"
            ) from None
        if not connection.host:
            raise ConfigurationError(
                f"the Airflow connection '{conn_id}' needs a host: the receiver's address"
            )
        host = connection.host
        base = host if "://" in host else f"{connection.schema or 'http'}://{host}"
        if connection.port:
            base = f"{base.rstrip('/')}:{connection.port}"
        return cls(base, token=connection.password or None, conn_id=conn_id)

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> ReceiverClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def post_batch(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
        """Post ``(idempotency key, profile)`` pairs; the receiver's outcome for each, in order.

        Raises :class:`SendFailed` when the batch may go again, :class:`ReceiverRefused` when it
        must not.
        """
        body = {"profiles": [{"key": key, "profile": profile} for key, profile in items]}
        try:
            response = self._session.post(self._url, json=body, timeout=self._timeout)
            answer = response.content  # read here: a body cut short is a transport failure too
        except requests.RequestException as error:
            kind = transport_failure_kind(error)
            raise SendFailed(kind, f"{_KIND_TEXT.get(kind, 'the request failed')} ({self.address})") from None
        if response.status_code >= 500 or response.status_code in RETRIED_CLIENT_STATUSES:
            raise SendFailed(
                f"http_{response.status_code}",
                f"{self.address} answered {response.status_code}: {_detail(answer)}",
            )
        if response.status_code != 200:
            raise ReceiverRefused(f"http_{response.status_code}", self._refusal(response.status_code, answer))
        return self._outcomes(answer, [key for key, _ in items])

    def _refusal(self, status: int, answer: bytes) -> str:
        what = f"the receiver at {self.address} refused a batch with {status}: {_detail(answer)}"
        if status in (401, 403):
            return (
                f"{what}. Set the password of the Airflow connection '{self._conn_id}' to the receiver's "
                "token (or clear it if the receiver needs none)"
            )
        if status in (404, 405):
            return (
                f"{what}. Check that the Airflow connection '{self._conn_id}' points at the profile receiver"
            )
        return f"{what}. The batch breaks the receiver's contract; fix the sender or the receiver"

    def _outcomes(self, answer: bytes, keys: list[str]) -> list[str]:
        try:
            results = json.loads(answer)["results"]
            answered = [(result["key"], result["status"]) for result in results]
        except (ValueError, TypeError, KeyError):
            answered = None
        if answered is None or [key for key, _ in answered] != keys:
            raise ReceiverRefused(
                "bad_answer",
                f"the receiver at {self.address} acknowledged a batch of {len(keys)} profiles with an "
                f"answer that does not list their keys in order: {_detail(answer)}. Check that the "
                f"Airflow connection '{self._conn_id}' points at the profile receiver",
            )
        outcomes = [status for _, status in answered]
        if not set(outcomes) <= {"accepted", "duplicate"}:
            raise ReceiverRefused(
                "bad_answer",
                f"the receiver at {self.address} answered unknown outcomes: {sorted(set(outcomes))}",
            )
        return outcomes


_KIND_TEXT = {
    "refused": "connection refused",
    "timeout": "no answer within the timeout",
    "reset": "the connection was dropped before an answer",
    "unresolved": "the host name does not resolve",
}


def transport_failure_kind(error: requests.RequestException) -> str:
    """What kind of transport failure ``error`` is, from the errors it wraps."""
    if isinstance(error, requests.Timeout):
        return "timeout"
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return "reset"
    causes = list(_causes(error))
    if any(isinstance(cause, ConnectionRefusedError) for cause in causes):
        return "refused"
    if any(isinstance(cause, ConnectionResetError | BrokenPipeError) for cause in causes):
        return "reset"
    names = {type(cause).__name__ for cause in causes}
    if names & {"RemoteDisconnected", "ProtocolError", "IncompleteRead"}:
        return "reset"
    if names & {"NameResolutionError", "gaierror"}:
        return "unresolved"
    return "connection"


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and everything it wraps: requests nests urllib3's errors, which nest the OS's."""
    seen: set[int] = set()
    pending: list[object] = [error]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend(
            [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        )


def _detail(answer: bytes) -> str:
    """The receiver's message in an answer: its ``detail`` if JSON, else the start of the text."""
    try:
        document = json.loads(answer)
    except ValueError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("detail"), str):
        text = document["detail"]
    else:
        text = answer.decode("utf-8", errors="replace")
    text = " ".join(text.split())
    return (text[:KEPT_DETAIL_CHARS] + "…") if len(text) > KEPT_DETAIL_CHARS else text or "(no body)"


def idempotency_key(run_id: str, seq: int) -> str:
    """The key the receiver deduplicates on: one per profile of a run, the same on every resend."""
    return f"{run_id}/{seq}"


@dataclass(frozen=True, slots=True)
class SendResult:
    """What one sender delivered (XCom-small); other senders of the run count their own."""

    delivered: int
    accepted: int
    duplicates: int
    batches: int
    failed_sends: int
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class _Sent:
    """A profile the receiver acknowledged, for its log line."""

    profile: Mapping[str, Any]
    age: int
    outcome: str


@dataclass(frozen=True, slots=True)
class _Attempt:
    """One claim's end: nothing to claim, acknowledged, failed (to retry) or refused (to raise)."""

    sent: list[_Sent] = field(default_factory=list)
    failure: SendFailed | None = None
    refusal: ReceiverRefused | None = None
    profiles: int = 0


@dataclass(slots=True)
class _Tally:
    accepted: int = 0
    duplicates: int = 0
    batches: int = 0
    failed_sends: int = 0

    def add(self, sent: Sequence[_Sent]) -> None:
        self.batches += 1
        accepted = sum(1 for profile in sent if profile.outcome == "accepted")
        self.accepted += accepted
        self.duplicates += len(sent) - accepted

    def result(self, sent_at: datetime) -> SendResult:
        delivered = self.accepted + self.duplicates
        return SendResult(delivered, self.accepted, self.duplicates, self.batches, self.failed_sends, sent_at)


class _FailingSends:
    """Consecutive failed sends: how long to wait before the next, and how long they may go on."""

    def __init__(self, limit: timedelta, backoff: Backoff) -> None:
        self._limit_s = limit.total_seconds()
        self._backoff = backoff
        self.reset()

    def reset(self) -> None:
        self._since: float | None = None
        self._delays = self._backoff.delays()

    def wait_after(self, failure: SendFailed) -> float:
        """Seconds to wait before the next send; raises once failures have lasted past the limit."""
        now = time.monotonic()
        if self._since is None:
            self._since = now
        elif now - self._since > self._limit_s:
            raise ReceiverUnavailable(
                f"every send to the receiver failed for {now - self._since:.0f} s, longer than the "
                f"{self._limit_s:.0f} s this task waits (last: {failure}). The profiles stay queued; the "
                "task's retry sends them. If it keeps failing, check the receiver and the Airflow "
                "connection that names it"
            )
        return next(self._delays)


def run_sender(
    connect: Callable[[], psycopg.Connection],
    receiver: ReceiverClient,
    *,
    run_id: str,
    batch_size: int,
    locale: str,
    poll_seconds: float,
    outage_limit: timedelta = DEFAULT_OUTAGE_LIMIT,
    idle_limit: timedelta = DEFAULT_IDLE_LIMIT,
    log: logging.Logger = log,
    backoff: Backoff = SEND_BACKOFF,
) -> SendResult:
    """Deliver the run's outbox until process has ended and the outbox is empty (module docstring).

    ``connect`` opens a new connection to the store (called again after PostgreSQL went away);
    ``poll_seconds`` is the wait when the outbox is empty but process is still going;
    ``outage_limit`` bounds both a run of consecutive failed sends and an outage of the store:
    beyond it the task fails, and Airflow's retry resumes from the outbox; ``idle_limit`` bounds
    the wait with nothing queued while nothing happens upstream (:class:`SendingStalled`).
    """
    tally = _Tally()
    failing = _FailingSends(outage_limit, backoff)
    with ReconnectingStore(connect, outage_limit=outage_limit, backoff=backoff, logger=log) as store:
        while True:
            attempt = store.run(
                lambda conn: _send_batch(conn, receiver, run_id=run_id, batch_size=batch_size),
                what=f"sending a batch of run {run_id}",
            )
            if attempt.refusal is not None:
                raise attempt.refusal
            if attempt.failure is not None:
                tally.failed_sends += 1
                wait = failing.wait_after(attempt.failure)
                log.warning(
                    "send of %d profiles failed (%s); they go again in %.1f s",
                    attempt.profiles,
                    attempt.failure,
                    wait,
                )
                time.sleep(wait)
            elif attempt.sent:
                failing.reset()
                tally.add(attempt.sent)
                for sent in attempt.sent:
                    name, sex, job = (sent.profile[key] for key in ("name", "sex", "job"))
                    log.info(sent_line(name, sex, job, sent.age, sent.outcome, locale))
            elif (state := store.run(lambda conn: _finish(conn, run_id), what="finishing")).sent_at:
                result = tally.result(state.sent_at)
                log.info(
                    "send finished: %d profiles delivered in %d batches (%d the receiver had already), "
                    "%d failed sends; the run's outbox is empty",
                    result.delivered,
                    result.batches,
                    result.duplicates,
                    result.failed_sends,
                )
                return result
            elif state.upstream_idle > idle_limit:
                raise SendingStalled(
                    f"run {run_id}: nothing to send and nothing new upstream for {state.upstream_idle}, and "
                    "the run is not processed. Are its generate and process tasks running? One may have "
                    "failed for good: clear it (it resumes where it stopped), then this task"
                )
            else:
                time.sleep(poll_seconds)


def _send_batch(
    conn: psycopg.Connection, receiver: ReceiverClient, *, run_id: str, batch_size: int
) -> _Attempt:
    """Claim a batch, post it, and record the answer in the claim's transaction."""
    with conn.transaction():
        rows = conn.execute(
            read_sql(SQL_DIR, "send_claim"), {"run_id": run_id, "batch_size": batch_size}
        ).fetchall()
        if not rows:
            return _Attempt()
        seqs = [seq for seq, _, _, _ in rows]
        keys = [idempotency_key(run_id, seq) for seq in seqs]
        try:
            outcomes = receiver.post_batch(list(zip(keys, [profile for *_, profile in rows], strict=True)))
        except (SendFailed, ReceiverRefused) as error:
            detail = error.detail if isinstance(error, SendFailed) else str(error)
            conn.execute(
                read_sql(SQL_DIR, "send_record_failure"),
                {"run_id": run_id, "seqs": seqs, "kind": error.kind, "detail": detail},
            )
            if isinstance(error, SendFailed):
                return _Attempt(failure=error, profiles=len(rows))
            return _Attempt(refusal=error, profiles=len(rows))
        conn.execute(
            read_sql(SQL_DIR, "send_record_deliveries"),
            {"run_id": run_id, "seqs": seqs, "keys": keys, "outcomes": outcomes},
        )
    return _Attempt(
        sent=[
            _Sent(profile, age, outcome) for (_, _, age, profile), outcome in zip(rows, outcomes, strict=True)
        ],
        profiles=len(rows),
    )


@dataclass(frozen=True, slots=True)
class _RunState:
    """Where the run stands when the outbox had nothing to claim."""

    sent_at: datetime | None
    # How long since anything happened upstream (registration, a stored profile, generation's end).
    upstream_idle: timedelta


def _finish(conn: psycopg.Connection, run_id: str) -> _RunState:
    """``runs.sent_at`` once the run is processed and its outbox empty (set now if by this sender)."""
    with conn.transaction():
        finished = conn.execute(read_sql(SQL_DIR, "send_finish"), {"run_id": run_id}).fetchone()
        if finished is not None:
            return _RunState(sent_at=finished[0], upstream_idle=timedelta(0))
        state = conn.execute(read_sql(SQL_DIR, "send_run_state"), {"run_id": run_id}).fetchone()
    if state is None:
        raise RunNotRegistered(
            f"run {run_id} is not registered in profile_relay.runs: its prepare task must succeed first"
        )
    _, sent_at, upstream_idle = state
    return _RunState(sent_at=sent_at, upstream_idle=upstream_idle)
