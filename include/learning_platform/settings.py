"""Operator settings of the learning platform report: one JSON Airflow Variable.

``learning_platform_report`` (all keys optional)::

    {"language": "en", "recipients": ["analysts@example.org"],
     "spreadsheet": "<spreadsheet key or URL>", "history_worksheet": "History",
     "summary_worksheet": "Daily report", "local_dir": "/path/for/report/files",
     "max_rejected_share": 0.05, "min_daily_records": 0, "min_volume_ratio": 0.2,
     "volume_history_days": 14, "quiet_days": ["2026-12-25", "2027-01-01"]}

The last four drive the volume check (``quality.py`` says how): ``min_daily_records`` is the
fewest records a whole day may judge, ``min_volume_ratio`` the share of the median of the
``volume_history_days`` earlier dates it must reach, and ``quiet_days`` the dates (YYYY-MM-DD)
known to be quiet, such as holidays, which pass whatever their count: declare them ahead.

Read when a task runs, never while the DAG file is parsed. A person triggering a run can
still choose the language with the DAG's ``language`` param.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import date
from pathlib import Path
from typing import Any

from include.common.failures import ConfigurationError
from include.learning_platform.quality import (
    DEFAULT_MAX_REJECTED_SHARE,
    DEFAULT_MIN_DAILY_RECORDS,
    DEFAULT_MIN_VOLUME_RATIO,
    DEFAULT_VOLUME_HISTORY_DAYS,
    MIN_VOLUME_HISTORY,
    VolumeRule,
)
from include.learning_platform.texts import Language

REPORT_VARIABLE = "learning_platform_report"
# Google Cloud connection holding the service account's key; absent: the report goes to a file.
SHEETS_CONN_ID = "learning_platform_sheets"
DEFAULT_HISTORY_WORKSHEET = "History"
DEFAULT_SUMMARY_WORKSHEET = "Daily report"
TEST_MODE_SUFFIX = "(test mode)"


@dataclass(frozen=True, slots=True)
class ReportSettings:
    language: Language = Language.EN
    recipients: str | tuple[str, ...] = ()  # checked by parse_recipients when mailing
    spreadsheet: str | None = None
    history_worksheet: str = DEFAULT_HISTORY_WORKSHEET
    summary_worksheet: str = DEFAULT_SUMMARY_WORKSHEET
    local_dir: Path | None = None  # default: <AIRFLOW_HOME>/reports/learning_platform
    max_rejected_share: float = DEFAULT_MAX_REJECTED_SHARE
    min_daily_records: int = DEFAULT_MIN_DAILY_RECORDS
    min_volume_ratio: float = DEFAULT_MIN_VOLUME_RATIO
    volume_history_days: int = DEFAULT_VOLUME_HISTORY_DAYS
    quiet_days: frozenset[date] = frozenset()

    @property
    def volume(self) -> VolumeRule:
        return VolumeRule(self.min_daily_records, self.min_volume_ratio, self.volume_history_days)

    @property
    def report_directory(self) -> Path:
        """Where report files go when there are no Google credentials."""
        home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")
        return self.local_dir or home / "reports" / "learning_platform"

    def for_test_mode(self) -> ReportSettings:
        """Where a test-mode run publishes: beside the real report, never over it, and marked."""
        return replace(
            self,
            history_worksheet=f"{self.history_worksheet} {TEST_MODE_SUFFIX}",
            summary_worksheet=f"{self.summary_worksheet} {TEST_MODE_SUFFIX}",
            local_dir=self.report_directory / "test-mode",
        )

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
                min_daily_records=_whole(values, "min_daily_records", DEFAULT_MIN_DAILY_RECORDS),
                min_volume_ratio=float(values.get("min_volume_ratio", DEFAULT_MIN_VOLUME_RATIO)),
                volume_history_days=_whole(values, "volume_history_days", DEFAULT_VOLUME_HISTORY_DAYS),
                quiet_days=_dates(values.get("quiet_days", ())),
            )
        except (TypeError, ValueError) as error:
            raise ConfigurationError(f"Variable {REPORT_VARIABLE} is invalid: {error}") from None
        for key in ("max_rejected_share", "min_volume_ratio"):
            if not 0 <= getattr(settings, key) <= 1:
                raise ConfigurationError(f"Variable {REPORT_VARIABLE}: {key} must be between 0 and 1")
        if settings.min_daily_records < 0:
            raise ConfigurationError(f"Variable {REPORT_VARIABLE}: min_daily_records must be 0 or more")
        if settings.volume_history_days < MIN_VOLUME_HISTORY:
            raise ConfigurationError(
                f"Variable {REPORT_VARIABLE}: volume_history_days must be at least {MIN_VOLUME_HISTORY}"
            )
        return settings


def report_settings(*, test_mode: bool = False) -> ReportSettings:
    """The settings in the Airflow Variable (defaults when it is not defined)."""
    from airflow.sdk import Variable

    settings = parse_report_settings(Variable.get(REPORT_VARIABLE, default=None))
    return settings.for_test_mode() if test_mode else settings


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


def _whole(values: Mapping[str, Any], key: str, default: int) -> int:
    # int() would quietly cut 2.5 to 2 and take true for 1: a count must be written as one.
    value = values.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} must be a whole number, got {value!r}")
    return value


def _dates(value: Any) -> frozenset[date]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ValueError(f"quiet_days must be a list of dates as YYYY-MM-DD, got {value!r}")
    try:
        return frozenset(date.fromisoformat(day) for day in value)
    except (TypeError, ValueError):
        raise ValueError(f"quiet_days must be a list of dates as YYYY-MM-DD, got {value!r}") from None
