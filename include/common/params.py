"""Trigger-form params shared by the pipelines' DAG files."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param


def optional_text(title: str, description: str, **schema: Any) -> Param:
    """A text param that may stay empty: the form then leaves the field optional, and an empty
    field means "as configured" (see ``include.common.settings``)."""
    return Param(None, type=["null", "string"], title=title, description=description, **schema)


def optional_integer(title: str, description: str, *, minimum: int = 1, **schema: Any) -> Param:
    """An integer param that may stay empty ("as configured")."""
    return Param(
        None, type=["null", "integer"], minimum=minimum, title=title, description=description, **schema
    )
