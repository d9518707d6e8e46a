"""The report's operator settings: one JSON Variable, checked with messages that say what to fix."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from include.learning_platform.quality import VolumeRule
from include.learning_platform.settings import REPORT_VARIABLE, ReportSettings, parse_report_settings
from include.learning_platform.texts import Language


def test_an_undefined_variable_means_the_defaults() -> None:
    settings = parse_report_settings(None)
    assert settings == ReportSettings()
    assert (settings.language, settings.spreadsheet, settings.max_rejected_share) == (Language.EN, None, 0.05)


def test_every_key_is_read_from_json() -> None:
    settings = parse_report_settings(
        '{"language": "RU", "recipients": "a@x.org; b@x.org", "spreadsheet": "key123",'
        ' "history_worksheet": "H", "summary_worksheet": "S", "local_dir": "/srv/reports",'
        ' "max_rejected_share": 0.1, "min_daily_records": 500, "min_volume_ratio": 0.3,'
        ' "volume_history_days": 28, "quiet_days": ["2026-12-25", "2027-01-01"]}'
    )
    assert settings == ReportSettings(
        language=Language.RU,
        recipients="a@x.org; b@x.org",
        spreadsheet="key123",
        history_worksheet="H",
        summary_worksheet="S",
        local_dir=Path("/srv/reports"),
        max_rejected_share=0.1,
        min_daily_records=500,
        min_volume_ratio=0.3,
        volume_history_days=28,
        quiet_days=frozenset({date(2026, 12, 25), date(2027, 1, 1)}),
    )
    assert settings.volume == VolumeRule(min_records=500, min_ratio=0.3, history_days=28)
    assert settings.report_directory == Path("/srv/reports")


def test_report_files_default_to_the_airflow_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert ReportSettings().report_directory == tmp_path / "reports" / "learning_platform"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"recipient": "a@x.org"}', "unknown keys \\['recipient'\\]"),
        ('{"language": "de"}', "is invalid"),
        ('{"max_rejected_share": 5}', "between 0 and 1"),
        ('{"max_rejected_share": "lots"}', "is invalid"),
        ('{"min_volume_ratio": 1.5}', "min_volume_ratio must be between 0 and 1"),
        ('{"min_daily_records": -1}', "min_daily_records must be 0 or more"),
        ('{"min_daily_records": 99.5}', "min_daily_records must be a whole number"),
        ('{"volume_history_days": 2}', "volume_history_days must be at least 3"),
        ('{"volume_history_days": "14"}', "volume_history_days must be a whole number"),
        ('{"quiet_days": "2026-12-25"}', "quiet_days must be a list of dates"),
        ('{"quiet_days": ["25.12.2026"]}', "quiet_days must be a list of dates"),
        ('{"quiet_day": ["2026-12-25"]}', "unknown keys \\['quiet_day'\\]"),
        ("[1, 2]", "must be a JSON object"),
        ("{not json", "must be a JSON object"),
    ],
)
def test_a_bad_variable_names_itself_and_the_problem(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        parse_report_settings(value)
    assert REPORT_VARIABLE in str(raised.value)


def test_keys_left_out_keep_their_defaults() -> None:
    settings = parse_report_settings('{"spreadsheet": "key123"}')
    assert (settings.history_worksheet, settings.summary_worksheet) == ("History", "Daily report")
