"""Failure alerts always have somewhere to go, or the run refuses to start, saying what to set."""

from __future__ import annotations

import json

import pytest

from include.common.alerts import (
    NoAlertRecipients,
    alert_recipients,
    check_alerts_can_be_sent,
)
from include.common.failures import ConfigurationError, PermanentFailure

SMTP = {"conn_type": "smtp", "host": "127.0.0.1", "port": 2525, "extra": {"from_email": "airflow@x.test"}}


@pytest.fixture
def smtp_defined(airflow_home, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(SMTP))
    monkeypatch.delenv("AIRFLOW_VAR_ALERT_RECIPIENTS", raising=False)
    monkeypatch.delenv("AIRFLOW__PIPELINES__ALERT_RECIPIENTS", raising=False)


def test_the_variable_names_the_recipients(smtp_defined, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_ALERT_RECIPIENTS", "oncall@x.test; lead@x.test")
    monkeypatch.setenv("AIRFLOW__PIPELINES__ALERT_RECIPIENTS", "default@x.test")

    assert alert_recipients() == ("oncall@x.test", "lead@x.test")


@pytest.mark.parametrize("variable", [None, "", "  "])
def test_without_the_variable_the_deployments_default_gets_the_alerts(
    smtp_defined, monkeypatch, variable
) -> None:
    if variable is not None:
        monkeypatch.setenv("AIRFLOW_VAR_ALERT_RECIPIENTS", variable)
    monkeypatch.setenv("AIRFLOW__PIPELINES__ALERT_RECIPIENTS", "default@x.test")

    assert alert_recipients() == ("default@x.test",)
    assert check_alerts_can_be_sent() == ("default@x.test",)


def test_with_nobody_to_alert_the_check_fails_naming_the_variable_and_the_option(smtp_defined) -> None:
    with pytest.raises(NoAlertRecipients) as raised:
        check_alerts_can_be_sent()

    message = str(raised.value)
    assert "Variable 'alert_recipients'" in message
    assert "AIRFLOW__PIPELINES__ALERT_RECIPIENTS" in message
    assert isinstance(raised.value, PermanentFailure)


def test_an_invalid_address_names_where_it_was_set(smtp_defined, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW__PIPELINES__ALERT_RECIPIENTS", "oncall at x.test")

    with pytest.raises(ConfigurationError, match=r"option \[pipelines\] alert_recipients: not an email"):
        alert_recipients()


def test_without_the_smtp_connection_the_check_names_it(smtp_defined, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_ALERT_RECIPIENTS", "oncall@x.test")
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT")

    with pytest.raises(ConfigurationError, match="connection 'smtp_default', which is not defined"):
        check_alerts_can_be_sent()


def test_without_a_sender_the_check_names_the_extra(smtp_defined, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_ALERT_RECIPIENTS", "oncall@x.test")
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(SMTP | {"extra": {}}))

    with pytest.raises(ConfigurationError, match="no 'from_email' extra"):
        check_alerts_can_be_sent()
