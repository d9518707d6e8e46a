"""The people a run generates, and their age on the run's date.

The decision: profile ``n`` of a run is a pure function of ``(seed, n, reference_date)``. One
``Faker`` per factory is re-seeded with ``"{seed}:{n}"`` before each profile, so profile ``n``
never depends on how many were made before it: a generator killed after storing 1,234 profiles
resumes at 1,235 and makes exactly the people the killed try would have made. Faker's own
birthdate is drawn relative to ``date.today()``, which would give a rerun next week other
people; it is replaced by one drawn, by the same seeded Faker, uniformly between
``reference_date`` − 100 years and ``reference_date`` (so about 11 % fall in 30..40).

The price: re-seeding costs a few microseconds per profile on top of Faker's ~0.45 ms for
``profile()``; the generator makes at most a few thousand profiles a second either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

from include.profile_relay.settings import MAX_AGE

Sex = Literal["M", "F"]


@dataclass(frozen=True, slots=True)
class Profile:
    """One generated person: what the stages read, and the whole profile as it is stored."""

    seq: int
    name: str
    sex: Sex
    job: str
    birthdate: date
    # Faker's whole profile, JSON-safe (decimals as strings, dates as ISO), birthdate replaced.
    data: dict[str, Any]


class ProfileFactory:
    """Makes profile ``seq`` of a run, the same on every call, worker and retry."""

    def __init__(self, locale: str, seed: int, reference_date: date) -> None:
        from faker import Faker  # deferred: importing Faker loads its providers (~0.3 s)

        self._faker = Faker(locale)
        self._seed = seed
        self._earliest = years_before(reference_date, MAX_AGE)
        self._span_days = (reference_date - self._earliest).days

    def make(self, seq: int) -> Profile:
        faker = self._faker
        faker.seed_instance(f"{self._seed}:{seq}")
        raw = faker.profile()
        birthdate = self._earliest + timedelta(days=faker.random.randint(0, self._span_days))
        data = {key: _json_safe(value) for key, value in raw.items()}
        data["birthdate"] = birthdate.isoformat()
        return Profile(
            seq=seq, name=raw["name"], sex=raw["sex"], job=raw["job"], birthdate=birthdate, data=data
        )


def age_on(birthdate: date, on: date) -> int:
    """Completed years on ``on``. Born on 29 February: a year older on 1 March in common years.

    The same rule as PostgreSQL's ``age()``, which the store judges with (a test holds both).
    """
    if on < birthdate:
        raise ValueError(f"born {birthdate} is after {on}: no age")
    return on.year - birthdate.year - ((on.month, on.day) < (birthdate.month, birthdate.day))


def in_age_range(birthdate: date, on: date, age_min: int, age_max: int) -> bool:
    """Whether the person is ``age_min`` to ``age_max`` years old (inclusive) on ``on``."""
    return age_min <= age_on(birthdate, on) <= age_max


def years_before(day: date, years: int) -> date:
    """The same calendar day ``years`` earlier; 29 February becomes 28 February in a common year."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _json_safe(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_json_safe(item) for item in value]
    return value
