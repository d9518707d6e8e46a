"""The alert every pipeline task sends when it fails for good, and the check that someone gets it.

A provider ``SmtpNotifier`` on the DAGs' default args: Airflow calls it once per task that
ends in ``failed``, never for a try that will be retried. It says which DAG, task, date and try
failed, with what error and where the log is, through the ``smtp_default`` connection.

Who gets it is decided when it is sent: the Variable ``alert_recipients`` (comma separated),
else the deployment's default, option ``alert_recipients`` of section ``[pipelines]``
(``AIRFLOW__PIPELINES__ALERT_RECIPIENTS``), so that deleting the Variable does not silence
alerts. A failing callback is only logged by Airflow, so a DAG calls
:func:`check_alerts_can_be_sent` in its first task: a run that nobody would hear of failing
fails at once instead, saying what to set.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.smtp.notifications.smtp import SmtpNotifier

from include.common.email import DEFAULT_SMTP_CONN_ID, parse_recipients
from include.common.failures import ConfigurationError

ALERT_RECIPIENTS_VARIABLE = "alert_recipients"
DEFAULT_RECIPIENTS_SECTION = "pipelines"
DEFAULT_RECIPIENTS_OPTION = "alert_recipients"

SUBJECT = "[Airflow alert] {{ ti.dag_id }}.{{ ti.task_id }} failed ({{ ti.run_id }})"

# Rendered by Airflow with the task's context. The error text is escaped: it may quote data.
HTML = """\
<p><b>{{ ti.dag_id }}.{{ ti.task_id }}</b> failed and will not be retried.</p>
<table>
<tr><td>DAG</td><td>{{ ti.dag_id }}</td></tr>
<tr><td>Task</td><td>{{ ti.task_id }}</td></tr>
<tr><td>Day processed (UTC)</td><td>{% if data_interval_start %}{{ data_interval_start | ds }}\
{% if params.get('test_mode') %} (test mode){% endif %}{% else %}none{% endif %}</td></tr>
<tr><td>Run</td><td>{{ ti.run_id }}</td></tr>
<tr><td>Try</td><td>{{ ti.try_number }} of {{ ti.max_tries + 1 }}</td></tr>
<tr><td>Error</td><td><pre>{{ exception | string | e }}</pre></td></tr>
<tr><td>Log</td><td><a href="{{ ti.log_url }}">{{ ti.log_url }}</a></td></tr>
</table>
"""


class NoAlertRecipients(ConfigurationError):
    """Neither the Variable nor the deployment's default names anyone to alert."""


class FailureAlert(SmtpNotifier):
    """``SmtpNotifier`` whose recipients are looked up when the alert is sent (see the module)."""

    def notify(self, context: Any) -> None:
        self.to = alert_recipients()
        super().notify(context)


def failure_alert() -> FailureAlert:
    """The notifier to put in ``default_args["on_failure_callback"]``."""
    return FailureAlert(to=(), subject=SUBJECT, html_content=HTML, smtp_conn_id=DEFAULT_SMTP_CONN_ID)


def alert_recipients() -> tuple[str, ...]:
    """The addresses failure alerts go to: the Variable if set, else the deployment's default."""
    from airflow.sdk import Variable, conf

    where = f"Airflow Variable '{ALERT_RECIPIENTS_VARIABLE}'"
    value = Variable.get(ALERT_RECIPIENTS_VARIABLE, default=None)
    if not (value or "").strip():
        where = f"option [{DEFAULT_RECIPIENTS_SECTION}] {DEFAULT_RECIPIENTS_OPTION}"
        value = conf.get(DEFAULT_RECIPIENTS_SECTION, DEFAULT_RECIPIENTS_OPTION, fallback="")
    if not (value or "").strip():
        raise NoAlertRecipients(
            f"nobody would receive this pipeline's failure alerts: set the Airflow Variable "
            f"'{ALERT_RECIPIENTS_VARIABLE}' (comma-separated addresses), or the deployment's default "
            f"[{DEFAULT_RECIPIENTS_SECTION}] {DEFAULT_RECIPIENTS_OPTION} "
            f"(AIRFLOW__{DEFAULT_RECIPIENTS_SECTION.upper()}__{DEFAULT_RECIPIENTS_OPTION.upper()})"
        )
    try:
        return parse_recipients(value)
    except ValueError as error:
        raise ConfigurationError(f"{where}: {error}") from None


def check_alerts_can_be_sent(smtp_conn_id: str = DEFAULT_SMTP_CONN_ID) -> tuple[str, ...]:
    """Fail with what to set unless a failure alert has recipients, a server and a sender.

    Returns the recipients. Sending nothing, it cannot prove the server accepts mail; it rules out
    the configuration gaps that would only surface in a callback's log.
    """
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    recipients = alert_recipients()
    try:
        connection = Connection.get(smtp_conn_id)
    except AirflowNotFoundException:
        raise ConfigurationError(
            f"failure alerts are sent through the Airflow connection '{smtp_conn_id}', which is not "
            "defined: add it (type SMTP, with the extra 'from_email')"
        ) from None
    if not connection.extra_dejson.get("from_email"):
        raise ConfigurationError(
            f"the Airflow connection '{smtp_conn_id}' has no 'from_email' extra: failure alerts "
            "would have no sender; set it"
        )
    return recipients
