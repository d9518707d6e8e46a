"""A failure that retrying cannot fix fails its task at once; any other is left to Airflow's retries."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from include.common.failures import ConfigurationError, PermanentFailure, no_retry_on_permanent_failure


@no_retry_on_permanent_failure
def body(error: Exception | None) -> str:
    if error is not None:
        raise error
    return "done"


def test_a_permanent_failure_fails_the_task_without_retries_keeping_its_message() -> None:
    with pytest.raises(AirflowFailException, match=r"^clear this run from `extract`$") as raised:
        body(PermanentFailure("clear this run from `extract`"))

    assert isinstance(raised.value.__cause__, PermanentFailure)


def test_a_configuration_error_is_permanent_and_still_a_value_error() -> None:
    with pytest.raises(AirflowFailException, match="set the Variable"):
        body(ConfigurationError("set the Variable"))
    assert issubclass(ConfigurationError, ValueError)


@pytest.mark.parametrize("error", [RuntimeError("database restarting"), ValueError("odd value")])
def test_any_other_failure_is_left_for_airflow_to_retry(error: Exception) -> None:
    with pytest.raises(type(error)) as raised:
        body(error)

    assert raised.value is error


def test_a_wrapped_body_returns_what_it_returns() -> None:
    assert body(None) == "done"
    assert body.__name__ == "body"
