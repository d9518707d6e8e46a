"""Failures that retrying a task cannot fix, and the one place that stops Airflow retrying them.

A task's retries (2, 4 then 8 minutes apart, see ``include.common.dag_defaults``) are for what
heals by itself: a restarted database, an API down for minutes. Some failures never heal by
waiting: a missing landing, a refused credential, a spreadsheet not shared, an invalid setting.
Retried, they only delay the alert by a quarter of an hour and repeat it in the log.

Stage modules raise a :class:`PermanentFailure` for those, with a message that says what the
operator must do; they stay free of Airflow. Task bodies are wrapped in
:func:`no_retry_on_permanent_failure`, which turns such a failure into Airflow's
``AirflowFailException``: the task fails at once, and its failure alert goes out once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class PermanentFailure(RuntimeError):
    """Retrying will not help: someone must act first, and the message says what to do."""


class ConfigurationError(PermanentFailure, ValueError):
    """A Variable, a connection or a configuration option is missing or invalid."""


def no_retry_on_permanent_failure(body: Callable[P, T]) -> Callable[P, T]:
    """Wrap a task body so that a :class:`PermanentFailure` fails its task without retries."""

    @functools.wraps(body)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return body(*args, **kwargs)
        except PermanentFailure as failure:
            from airflow.sdk.exceptions import AirflowFailException  # deferred: Airflow is heavy

            raise AirflowFailException(str(failure)) from failure

    return run
