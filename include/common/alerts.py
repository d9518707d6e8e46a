"""The alert every pipeline task sends when it fails for good (after its last retry).

A provider ``SmtpNotifier`` on the DAGs' default args: Airflow calls it once per task that
ends in ``failed``, never for a try that will be retried. It goes to the addresses in the
Variable ``alert_recipients`` (comma separated) through the ``smtp_default`` connection, and
says which DAG, task, date and try failed, with what error and where the log is.
"""

from __future__ import annotations

from typing import Any

from include.common.email import DEFAULT_SMTP_CONN_ID

ALERT_RECIPIENTS_VARIABLE = "alert_recipients"

SUBJECT = "[Airflow alert] {{ ti.dag_id }}.{{ ti.task_id }} failed ({{ ti.run_id }})"

# Rendered by Airflow with the task's context. The error text is escaped: it may quote data.
HTML = """\
<p><b>{{ ti.dag_id }}.{{ ti.task_id }}</b> failed after its last try.</p>
<table>
<tr><td>DAG</td><td>{{ ti.dag_id }}</td></tr>
<tr><td>Task</td><td>{{ ti.task_id }}</td></tr>
<tr><td>Date</td><td>{% if params.get('date') %}{{ params.date }}\
{% elif data_interval_start %}{{ data_interval_start | ds }}{% else %}none{% endif %}</td></tr>
<tr><td>Run</td><td>{{ ti.run_id }}</td></tr>
<tr><td>Try</td><td>{{ ti.try_number }} of {{ ti.max_tries + 1 }}</td></tr>
<tr><td>Error</td><td><pre>{{ exception | string | e }}</pre></td></tr>
<tr><td>Log</td><td><a href="{{ ti.log_url }}">{{ ti.log_url }}</a></td></tr>
</table>
"""


def failure_alert() -> Any:
    """The notifier to put in ``default_args["on_failure_callback"]``."""
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    return SmtpNotifier(
        to="{{ var.value." + ALERT_RECIPIENTS_VARIABLE + " }}",
        subject=SUBJECT,
        html_content=HTML,
        smtp_conn_id=DEFAULT_SMTP_CONN_ID,
    )
