"""Operator settings of the learning platform report: one JSON Airflow Variable.

``learning_platform_report`` (all keys optional)::

    {"language": "en", "recipients": ["analysts@example.org"],
     "spreadsheet": "<spreadsheet key or URL>", "history_worksheet": "History",
     "summary_worksheet": "Daily report", "local_dir": "/path/for/report/files",
     "max_rejected_share": 0.05}

Read when a task runs, never while the DAG file is parsed. A person triggering a run can
still choose the language with the DAG's ``language`` param.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from include.common.failures import ConfigurationError
from include.learning_platform.quality import DEFAULT_MAX_REJECTED_SHARE
from include.learning_platform.texts import Language

REPORT_VARIABLE = "learning_platform_report"
# Google Cloud connection holding the service account's key; absent: the report goes to a file.
SHEETS_CONN_ID = "learning_platform_sheets"
DEFAULT_HISTORY_WORKSHEET = "History"
DEFAULT_SUMMARY_WORKSHEET = "Daily report"


@dataclass(frozen=True, slots=True)
class ReportSettings:
    language: Language = Language.EN
    recipients: str | tuple[str, ...] = ()  # checked by parse_recipients when mailing
    spreadsheet: str | None = None
    history_worksheet: str = DEFAULT_HISTORY_WORKSHEET
    summary_worksheet: str = DEFAULT_SUMMARY_WORKSHEET
    local_dir: Path | None = None  # default: <AIRFLOW_HOME>/reports/learning_platform
    max_rejected_share: float = DEFAULT_MAX_REJECTED_SHARE

    @property
    def report_directory(self) -> Path:
        """Where report files go when there are no Google credentials."""
        home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")
        return self.local_dir or home / "reports" / "learning_platform"

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ReportSettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigurationError(
                f"Variable {REPORT_VARIABLE} has unknown keys {unknown}; known keys: {sorted(known)}"
            )
        try:
            settings = cls(
                language=Language(str(values.get("language", Language.EN.value)).lower()),
                recipients=_recipients(values.get("recipients", ())),
                spreadsheet=values.get("spreadsheet") or None,
                history_worksheet=values.get("history_worksheet") or DEFAULT_HISTORY_WORKSHEET,
                summary_worksheet=values.get("summary_worksheet") or DEFAULT_SUMMARY_WORKSHEET,
                local_dir=Path(values["local_dir"]) if values.get("local_dir") else None,
                max_rejected_share=float(values.get("max_rejected_share", DEFAULT_MAX_REJECTED_SHARE)),
            )
        except (TypeError, ValueError) as error:
            raise ConfigurationError(f"Variable {REPORT_VARIABLE} is invalid: {error}") from None
        if not 0 <= settings.max_rejected_share <= 1:
            raise ConfigurationError(
                f"Variable {REPORT_VARIABLE}: max_rejected_share must be between 0 and 1"
            )
        return settings


def report_settings() -> ReportSettings:
    """The settings in the Airflow Variable (defaults when it is not defined)."""
    from airflow.sdk import Variable

    return parse_report_settings(Variable.get(REPORT_VARIABLE, default=None))


def parse_report_settings(raw: str | Mapping[str, Any] | None) -> ReportSettings:
    """Settings from the Variable's value: JSON text, or already parsed."""
    if raw is None:
        return ReportSettings()
    try:
        values = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as error:
        raise ConfigurationError(f"Variable {REPORT_VARIABLE} must be a JSON object: {error}") from None
    if not isinstance(values, Mapping):
        raise ConfigurationError(f"Variable {REPORT_VARIABLE} must be a JSON object")
    return ReportSettings.from_mapping(values)


def _recipients(value: Any) -> str | tuple[str, ...]:
    return value if isinstance(value, str) else tuple(value)
