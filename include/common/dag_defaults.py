"""Task defaults every pipeline shares: bounded retries with exponential backoff.

The retry policy is a deployment setting read from Airflow's configuration (section
``[pipelines]``, or ``AIRFLOW__PIPELINES__TASK_RETRIES`` / ``..._RETRY_DELAY_SECONDS``), so a
local run can fail fast while production keeps the defaults below. Reading the
configuration touches no network or database, so it is safe while a DAG file is parsed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

TASK_RETRIES = 3
RETRY_DELAY_SECONDS = 120


def default_args(*, owner: str) -> dict[str, Any]:
    """``default_args`` for a production DAG owned by ``owner``.

    Tasks retry transient faults themselves within a try; these retries cover longer
    outages (a restarted database, an API down for minutes): 2, 4 then 8 minutes apart.
    A task that fails for good sends one alert email (see ``include.common.alerts``).
    """
    from airflow.sdk import conf

    from include.common.alerts import failure_alert

    return {
        "owner": owner,
        "retries": conf.getint("pipelines", "task_retries", fallback=TASK_RETRIES),
        "retry_delay": timedelta(
            seconds=conf.getint("pipelines", "retry_delay_seconds", fallback=RETRY_DELAY_SECONDS)
        ),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
        "execution_timeout": timedelta(hours=2),
        "on_failure_callback": failure_alert(),
    }
