"""A run's params, gaps filled from the Variable user_profiles_relay, become one RelaySpec."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest

from include.common.failures import ConfigurationError
from include.profile_relay.settings import RelaySpec, reference_date_of, run_seed
from tests.include.profile_relay.specs import REFERENCE_DATE, relay_spec


def test_only_count_is_required_the_rest_has_the_issues_defaults() -> None:
    spec = RelaySpec.from_params({"count": 3000}, run_id="r1", reference_date=REFERENCE_DATE)

    assert spec.count == 3000
    assert spec.interval_seconds == 0.5
    assert (spec.age_min, spec.age_max) == (30, 40)
    assert spec.locale == "ru_RU"
    assert spec.batch_size == 50
    assert (spec.conn_id, spec.receiver_conn_id) == ("warehouse_db", "profile_receiver")
    assert (spec.run_id, spec.dag_id, spec.reference_date) == ("r1", "user_profiles_relay", REFERENCE_DATE)
    assert spec.session_name == "user_profiles_relay"


def test_every_param_is_taken() -> None:
    spec = relay_spec(
        count=10,
        interval_seconds=0.25,
        age_min=18,
        age_max=18,
        locale="en_US",
        batch_size=1000,
        connection="relay_db",
        receiver="relay_http",
    )

    assert (spec.count, spec.interval_seconds, spec.age_min, spec.age_max) == (10, 0.25, 18, 18)
    assert (spec.locale, spec.batch_size, spec.conn_id, spec.receiver_conn_id) == (
        "en_US",
        1000,
        "relay_db",
        "relay_http",
    )


def test_empty_params_take_the_defaults() -> None:
    assert relay_spec(locale="", age_min=None, batch_size="", connection=None) == relay_spec()


@pytest.mark.parametrize("count", [None, ""])
def test_a_run_without_a_count_is_refused_saying_how_to_give_one(count) -> None:
    with pytest.raises(ConfigurationError, match=r"no count given.*param 'count'.*\"count\": 3000"):
        relay_spec(count=count)


@pytest.mark.parametrize("count", [0, -5, 1_000_001])
def test_a_count_out_of_bounds_is_refused(count: int) -> None:
    with pytest.raises(ConfigurationError, match=rf"count must be from 1 to 1,000,000, not {count}"):
        relay_spec(count=count)


@pytest.mark.parametrize("count", [2.5, True, "many", [3]])
def test_a_count_that_is_no_whole_number_is_refused(count) -> None:
    with pytest.raises(ConfigurationError, match="count must be a whole number"):
        relay_spec(count=count)


def test_whole_numbers_given_as_text_or_float_are_taken() -> None:
    assert relay_spec(count="3000", age_max=40.0).count == 3000


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"interval_seconds": -0.1}, "interval_seconds must be a number of at least 0"),
        ({"interval_seconds": "soon"}, "interval_seconds must be a number"),
        ({"interval_seconds": float("nan")}, "interval_seconds must be a number"),
        ({"age_min": 41}, "age_min 41 is above age_max 40"),
        ({"age_max": 101}, "age_max must be from 0 to 100, not 101"),
        ({"age_min": -1}, "age_min must be from 0 to 100, not -1"),
        ({"batch_size": 0}, "batch_size must be from 1 to 1000, not 0"),
        ({"batch_size": 1001}, "batch_size must be from 1 to 1000, not 1001"),
        ({"locale": "xx_XX"}, "locale 'xx_XX' is not a Faker locale: set the param 'locale'"),
        ({"connection": "   "}, "connection must be an Airflow connection id"),
    ],
)
def test_invalid_params_are_refused_naming_the_param(params: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        relay_spec(**params)


def test_a_run_longer_than_the_stage_timeout_allows_is_refused() -> None:
    # 23 h of generation is the most: the stages' execution_timeout is 24 h.
    relay_spec(count=82_800, interval_seconds=1)
    with pytest.raises(
        ConfigurationError, match=r"82801 × 1 s = 23\.0 h of generation.*'count' or 'interval"
    ):
        relay_spec(count=82_801, interval_seconds=1)


def test_the_seed_is_stable_per_run_and_differs_between_runs() -> None:
    seed = run_seed("user_profiles_relay", "manual__1")

    # Fixed, not hash(): another process (a retry on another worker) must get the same people.
    assert seed == run_seed("user_profiles_relay", "manual__1") == relay_spec("manual__1").seed
    assert seed == 5_102_461_839_262_637_313
    assert 0 <= seed < 2**63
    assert seed != run_seed("user_profiles_relay", "manual__2")
    assert seed != run_seed("other_dag", "manual__1")


def test_ages_are_counted_on_the_logical_date_in_utc() -> None:
    # 23:30 in Moscow on the 5th is 20:30 UTC on the 5th; 02:00 on the 6th in Moscow is the 5th UTC.
    run = SimpleNamespace(
        logical_date=datetime.fromisoformat("2026-12-06T02:00:00+03:00"),
        run_after=datetime(2026, 12, 9, tzinfo=UTC),
    )
    assert reference_date_of(run) == date(2026, 12, 5)


def test_a_run_without_a_logical_date_counts_ages_on_its_run_after() -> None:
    run = SimpleNamespace(logical_date=None, run_after=datetime(2026, 12, 9, 23, 59, tzinfo=UTC))
    assert reference_date_of(run) == date(2026, 12, 9)


@pytest.mark.parametrize(("interval", "poll"), [(0.5, 0.1), (1, 0.1), (0.25, 0.05), (0, 0.01), (0.01, 0.01)])
def test_idle_stages_look_again_within_a_fifth_of_the_interval(interval: float, poll: float) -> None:
    assert relay_spec(interval_seconds=interval).poll_seconds == pytest.approx(poll)
