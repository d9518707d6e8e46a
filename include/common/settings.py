"""A run's params, their gaps filled from the pipeline's settings Variable.

A scheduled run has the trigger form's defaults, which leave deployment-specific values (where
files are, which table) empty: a JSON Variable named after the DAG, with the params' keys, says
them once per deployment. A param set when triggering wins over the Variable; an empty one
(None or "") takes the Variable's value, and a key missing from both takes the pipeline's default.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from include.common.failures import ConfigurationError


def params_with_settings(params: Mapping[str, Any], variable: str) -> dict[str, Any]:
    """``params`` with every empty value taken from the JSON Variable ``variable`` (read now)."""
    from airflow.sdk import Variable  # deferred: spec modules stay importable without Airflow

    configured = parse_settings(variable, Variable.get(variable, default=None))
    return {**configured, **{key: value for key, value in params.items() if value not in (None, "")}}


def parse_settings(variable: str, value: str | None) -> dict[str, Any]:
    """The settings Variable ``variable``'s value as a dict; unset or blank is no settings."""
    if not (value or "").strip():
        return {}
    try:
        settings = json.loads(value)
    except json.JSONDecodeError as error:
        raise ConfigurationError(f"Airflow Variable '{variable}' is not valid JSON: {error}") from None
    if not isinstance(settings, dict):
        raise ConfigurationError(f"Airflow Variable '{variable}' must be a JSON object")
    return settings


def required_param(params: Mapping[str, Any], key: str, variable: str) -> str:
    """The non-blank text ``params[key]``; missing, the error says where to set it."""
    value = params.get(key)
    if not (isinstance(value, str) and value.strip()):
        raise ConfigurationError(
            f"no {key} given: set the param '{key}' when triggering, or the key '{key}' of the "
            f"Airflow Variable '{variable}' for scheduled runs"
        )
    return value


def relative_pattern(pattern: str, *, base: str) -> str:
    """A glob that stays inside the folder it is relative to (``base`` names that folder)."""
    parts = PurePosixPath(pattern).parts
    if pattern.startswith("/") or ".." in parts:
        raise ConfigurationError(f"pattern {pattern!r} must be relative to the {base}, without '..'")
    return pattern
