"""The report's operator settings: one JSON Variable, checked with messages that say what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

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
        ' "max_rejected_share": 0.1}'
    )
    assert settings == ReportSettings(
        language=Language.RU,
        recipients="a@x.org; b@x.org",
        spreadsheet="key123",
        history_worksheet="H",
        summary_worksheet="S",
        local_dir=Path("/srv/reports"),
        max_rejected_share=0.1,
    )
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
