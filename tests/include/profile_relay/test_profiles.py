"""Profile n of a run is a function of (seed, n, reference date); ages count completed years."""

from __future__ import annotations

import json
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from include.profile_relay.profiles import ProfileFactory, age_on, in_age_range, years_before

REFERENCE = date(2026, 12, 6)


@pytest.fixture(scope="module")
def factory() -> ProfileFactory:
    return ProfileFactory("ru_RU", seed=42, reference_date=REFERENCE)


def test_a_profile_has_the_fields_the_stages_read_and_all_of_fakers(factory: ProfileFactory) -> None:
    profile = factory.make(7)

    assert profile.seq == 7
    assert profile.sex in ("M", "F")
    assert profile.name
    assert profile.job
    assert profile.data["name"] == profile.name
    assert profile.data["sex"] == profile.sex
    assert profile.data["job"] == profile.job
    assert profile.data["birthdate"] == profile.birthdate.isoformat()
    assert set(profile.data) >= {"company", "ssn", "residence", "current_location", "blood_group", "mail"}
    # JSON-safe as it is: Faker's Decimal coordinates become strings.
    assert json.loads(json.dumps(profile.data)) == profile.data
    assert all(isinstance(part, str) for part in profile.data["current_location"])


def test_a_russian_profile_is_named_in_cyrillic(factory: ProfileFactory) -> None:
    assert all("А" <= letter <= "я" or letter in " Ё-ё" for letter in factory.make(1).name)


def test_profile_n_does_not_depend_on_the_profiles_made_before_it(factory: ProfileFactory) -> None:
    in_order = [factory.make(seq) for seq in range(1, 6)]
    resumed = ProfileFactory("ru_RU", seed=42, reference_date=REFERENCE)

    # A retry that resumes at 4 makes the same people 4 and 5 as the try it replaces.
    assert [resumed.make(seq) for seq in (4, 5)] == in_order[3:]
    assert factory.make(2) == in_order[1]


def test_other_runs_make_other_people(factory: ProfileFactory) -> None:
    other = ProfileFactory("ru_RU", seed=43, reference_date=REFERENCE)
    assert [other.make(seq).data for seq in range(1, 4)] != [factory.make(seq).data for seq in range(1, 4)]


def test_birthdates_span_a_hundred_years_before_the_reference_date(factory: ProfileFactory) -> None:
    birthdates = [factory.make(seq).birthdate for seq in range(1, 401)]

    assert all(date(1926, 12, 6) <= born <= REFERENCE for born in birthdates)
    # Drawn uniformly: about 11 of 100 years' worth are 30..40 years old (loose bounds, fixed seed).
    kept = sum(in_age_range(born, REFERENCE, 30, 40) for born in birthdates)
    assert 20 <= kept <= 70


def test_birthdates_do_not_depend_on_the_wall_clock_but_on_the_reference_date() -> None:
    later = ProfileFactory("ru_RU", seed=42, reference_date=date(2030, 1, 1))
    same = ProfileFactory("ru_RU", seed=42, reference_date=REFERENCE)

    assert same.make(3) == ProfileFactory("ru_RU", seed=42, reference_date=REFERENCE).make(3)
    assert later.make(3).birthdate != same.make(3).birthdate


@pytest.mark.parametrize(
    ("born", "on", "age"),
    [
        (date(1990, 5, 17), date(2026, 5, 16), 35),
        (date(1990, 5, 17), date(2026, 5, 17), 36),
        (date(1990, 5, 17), date(2026, 12, 31), 36),
        (date(2026, 12, 6), date(2026, 12, 6), 0),
        # Born on 29 February: a year older on 1 March in common years, on 29 February in leap years.
        (date(1996, 2, 29), date(2026, 2, 28), 29),
        (date(1996, 2, 29), date(2026, 3, 1), 30),
        (date(1996, 2, 29), date(2028, 2, 28), 31),
        (date(1996, 2, 29), date(2028, 2, 29), 32),
        # Counting on 29 February.
        (date(1986, 3, 1), date(2028, 2, 29), 41),
        (date(1988, 2, 28), date(2028, 2, 29), 40),
    ],
)
def test_age_is_completed_years_on_the_date(born: date, on: date, age: int) -> None:
    assert age_on(born, on) == age


def test_there_is_no_age_before_birth() -> None:
    with pytest.raises(ValueError, match="after"):
        age_on(date(2026, 12, 7), date(2026, 12, 6))


def test_the_age_range_is_inclusive_at_both_ends() -> None:
    on = date(2026, 12, 6)
    assert not in_age_range(date(1996, 12, 7), on, 30, 40)  # 29 until tomorrow
    assert in_age_range(date(1996, 12, 6), on, 30, 40)  # 30 today
    assert in_age_range(date(1985, 12, 7), on, 30, 40)  # 40 until tomorrow
    assert not in_age_range(date(1985, 12, 6), on, 30, 40)  # 41 today


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)), st.integers(0, 150))
def test_years_before_keeps_the_calendar_day_or_the_end_of_february(day: date, years: int) -> None:
    earlier = years_before(day, years)

    assert earlier.year == day.year - years
    assert (earlier.month, earlier.day) == (day.month, day.day) or (day.month, day.day, earlier.day) == (
        2,
        29,
        28,
    )
    assert age_on(earlier, day) == years
