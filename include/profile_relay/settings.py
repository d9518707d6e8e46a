"""What one run of ``user_profiles_relay`` works on: how many profiles, how fast, which ages, where.

Every run says its ``count`` when it is triggered (the form and the CLI refuse a run without it):
how many people a run generates is a decision per run, never a deployment default. The other
params, left empty, come from the Variable ``user_profiles_relay`` (JSON, the params' keys; see
``include.common.settings``), then from the defaults below. :meth:`RelaySpec.from_airflow` reads
them once per task into a plain, validated value the task bodies take as an argument, so tests,
the benchmark and the fault harness build one directly with :meth:`RelaySpec.from_params`.

What makes a cleared or retried run regenerate the very same people with the very same ages is
decided here too: the Faker seed is a stable hash of the run's identity, and ages are counted on
the run's logical date (see :func:`reference_date_of`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from typing import TYPE_CHECKING, Any

from include.common.failures import ConfigurationError, no_retry_on_permanent_failure
from include.common.settings import params_with_settings

if TYPE_CHECKING:
    from airflow.sdk.types import DagRunProtocol

SETTINGS_VARIABLE = "user_profiles_relay"
DAG_ID = "user_profiles_relay"
DEFAULT_CONN_ID = "warehouse_db"
DEFAULT_RECEIVER_CONN_ID = "profile_receiver"
DEFAULT_INTERVAL_SECONDS = 0.5
DEFAULT_AGE_MIN = 30
DEFAULT_AGE_MAX = 40
DEFAULT_LOCALE = "ru_RU"
DEFAULT_BATCH_SIZE = 50
MAX_COUNT = 1_000_000
MAX_BATCH_SIZE = 1000
# Faker draws birthdates up to this many years before the reference date.
MAX_AGE = 100
# The three stage tasks run for the whole generation and have a 24-hour execution timeout: a run
# must be able to finish generating well within it, leaving time for retries of the tail.
MAX_GENERATION = timedelta(hours=23)
MIN_POLL_SECONDS = 0.01
MAX_POLL_SECONDS = 0.1


@dataclass(frozen=True, slots=True)
class RelaySpec:
    """One run's relay: what is generated, which ages are kept, where they are stored and sent."""

    count: int
    interval_seconds: float
    age_min: int
    age_max: int
    locale: str
    batch_size: int
    # The Postgres connection of the store (schema profile_relay).
    conn_id: str
    # The HTTP connection of the receiver.
    receiver_conn_id: str
    run_id: str
    dag_id: str
    # Ages are completed years on this date: the run's, never the wall clock's.
    reference_date: date
    seed: int
    # The database sessions' application_name, so pg_stat_activity shows which task holds a lock.
    session_name: str = DAG_ID

    @property
    def poll_seconds(self) -> float:
        """How long an idle stage waits before looking again: a fifth of the interval, 10-100 ms.

        Short enough that a profile is sent well within one interval of its tick, long enough
        that a waiting stage costs the database a few indexed queries a second.
        """
        return max(MIN_POLL_SECONDS, min(MAX_POLL_SECONDS, self.interval_seconds / 5))

    @classmethod
    @no_retry_on_permanent_failure
    def from_airflow(cls, params: Mapping[str, Any], dag_run: DagRunProtocol, *, task_id: str) -> RelaySpec:
        """The spec of a task of ``dag_run``: its params, gaps filled from the settings Variable.

        Fails its task at once (no retries) when the run cannot work as triggered.
        """
        settings = params_with_settings(params, SETTINGS_VARIABLE)
        # The count is the run's own: a Variable's count would silently stand in for a forgotten one.
        settings["count"] = params.get("count")
        return cls.from_params(
            settings,
            run_id=dag_run.run_id,
            dag_id=dag_run.dag_id,
            reference_date=reference_date_of(dag_run),
            session_name=f"{dag_run.dag_id}.{task_id}",
        )

    @classmethod
    def from_params(
        cls,
        params: Mapping[str, Any],
        *,
        run_id: str,
        dag_id: str = DAG_ID,
        reference_date: date,
        session_name: str = "",
    ) -> RelaySpec:
        """Validate ``params`` (the form's keys) into a spec; every error names the param to fix."""
        count = _count(params.get("count"))
        interval = _number(params, "interval_seconds", DEFAULT_INTERVAL_SECONDS, minimum=0)
        if count * interval > MAX_GENERATION.total_seconds():
            raise ConfigurationError(
                f"count × interval_seconds = {count} × {interval:g} s = {count * interval / 3600:.1f} h of "
                f"generation, more than the {MAX_GENERATION.total_seconds() / 3600:g} h a run may take: "
                "lower the param 'count' or 'interval_seconds', or split the work into several runs"
            )
        age_min = _integer(params, "age_min", DEFAULT_AGE_MIN, minimum=0, maximum=MAX_AGE)
        age_max = _integer(params, "age_max", DEFAULT_AGE_MAX, minimum=0, maximum=MAX_AGE)
        if age_min > age_max:
            raise ConfigurationError(
                f"age_min {age_min} is above age_max {age_max}: no profile could be kept. "
                "Set the params 'age_min' ≤ 'age_max' (both inclusive)"
            )
        return cls(
            count=count,
            interval_seconds=interval,
            age_min=age_min,
            age_max=age_max,
            locale=_locale(params.get("locale") or DEFAULT_LOCALE),
            batch_size=_integer(params, "batch_size", DEFAULT_BATCH_SIZE, minimum=1, maximum=MAX_BATCH_SIZE),
            conn_id=_conn_id(params, "connection", DEFAULT_CONN_ID),
            receiver_conn_id=_conn_id(params, "receiver", DEFAULT_RECEIVER_CONN_ID),
            run_id=run_id,
            dag_id=dag_id,
            reference_date=reference_date,
            seed=run_seed(dag_id, run_id),
            session_name=session_name or dag_id,
        )


def reference_date_of(dag_run: DagRunProtocol) -> date:
    """The UTC date a run counts ages on: its logical date, or when it was due to run.

    A run triggered through the API with ``logical_date: null`` has none; its ``run_after`` is
    stored with it just the same, so a cleared run counts the same ages either way.
    """
    moment = dag_run.logical_date or dag_run.run_after
    return moment.astimezone(UTC).date()


def run_seed(dag_id: str, run_id: str) -> int:
    """A 63-bit seed that is the same for the same run on every worker and every Python.

    Not ``hash()``: string hashing is salted per process, so a retry would make other people.
    """
    digest = hashlib.sha256(f"{dag_id}\x00{run_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _count(value: Any) -> int:
    if value in (None, ""):
        raise ConfigurationError(
            "no count given: every run must say how many profiles to generate. Trigger it with the "
            f"param 'count' (1 to {MAX_COUNT:,}), e.g. --conf '{{\"count\": 3000}}'"
        )
    count = _as_integer("count", value)
    if not 1 <= count <= MAX_COUNT:
        raise ConfigurationError(f"count must be from 1 to {MAX_COUNT:,}, not {count}: set the param 'count'")
    return count


def _integer(params: Mapping[str, Any], key: str, default: int, *, minimum: int, maximum: int) -> int:
    value = params.get(key)
    number = default if value in (None, "") else _as_integer(key, value)
    if not minimum <= number <= maximum:
        raise ConfigurationError(
            f"{key} must be from {minimum} to {maximum}, not {number}: set the param '{key}'"
        )
    return number


def _as_integer(key: str, value: Any) -> int:
    # A bool is an int to Python, and 2.5 profiles are none: both are mistakes to name, not to round.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigurationError(f"{key} must be a whole number, not {value!r}: set the param '{key}'")
    try:
        number = float(value)
    except ValueError:
        raise ConfigurationError(
            f"{key} must be a whole number, not {value!r}: set the param '{key}'"
        ) from None
    if not number.is_integer():
        raise ConfigurationError(f"{key} must be a whole number, not {value!r}: set the param '{key}'")
    return int(number)


def _number(params: Mapping[str, Any], key: str, default: float, *, minimum: float) -> float:
    value = params.get(key)
    if value in (None, ""):
        return default
    if isinstance(value, bool):
        raise ConfigurationError(f"{key} must be a number, not {value!r}: set the param '{key}'")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{key} must be a number, not {value!r}: set the param '{key}'") from None
    if not math.isfinite(number) or number < minimum:
        raise ConfigurationError(
            f"{key} must be a number of at least {minimum:g}, not {value!r}: set the param '{key}'"
        )
    return number


def _locale(value: Any) -> str:
    from faker.config import AVAILABLE_LOCALES  # deferred: Faker imports every provider's module list

    if value not in AVAILABLE_LOCALES:
        raise ConfigurationError(
            f"locale {value!r} is not a Faker locale: set the param 'locale' to one of Faker's "
            f"(e.g. ru_RU, en_US, de_DE; faker.config.AVAILABLE_LOCALES lists {len(AVAILABLE_LOCALES)})"
        )
    return value


def _conn_id(params: Mapping[str, Any], key: str, default: str) -> str:
    value = params.get(key) or default
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(
            f"{key} must be an Airflow connection id, not {value!r}: set the param '{key}'"
        )
    return value.strip()
