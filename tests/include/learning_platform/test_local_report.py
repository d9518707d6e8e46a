"""Report files for a deployment without Google credentials: same tables, one history row per date."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

from include.learning_platform.local_report import HISTORY_FILE, write_local_report
from include.learning_platform.texts import ENGLISH, RUSSIAN
from tests.include.learning_platform.reports import DAY, FAILED, build_report, empty_day, figures


def history_rows(directory: Path) -> list[list[str]]:
    with (directory / HISTORY_FILE).open(newline="") as file:
        return list(csv.reader(file))


def test_the_day_is_written_as_html_and_csv_beside_the_history(tmp_path: Path) -> None:
    report = build_report()

    page = write_local_report(tmp_path, report, report.history, ENGLISH)

    assert page == tmp_path / "learning_platform_2026-11-22.html"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "learning_platform_2026-11-22.csv",
        "learning_platform_2026-11-22.html",
        HISTORY_FILE,
    ]
    html = page.read_text()
    assert "<h1>Learning platform: daily report — 2026-11-22</h1>" in html
    assert "Share of successful submits" in html
    summary = (tmp_path / "learning_platform_2026-11-22.csv").read_text().splitlines()
    assert summary[:2] == ["Daily report", "Metric,Value"]
    assert "Share of successful submits,0.375" in summary  # 45 of 120, machine-readable


def test_history_keeps_one_row_per_date_in_order_after_reruns_and_backfills(tmp_path: Path) -> None:
    later, earlier = build_report(DAY), build_report(DAY - timedelta(days=3), day_figures=figures(users=7))

    write_local_report(tmp_path, later, (later.stats,), ENGLISH)
    write_local_report(tmp_path, later, (later.stats,), ENGLISH)
    write_local_report(tmp_path, earlier, (earlier.stats, later.stats), ENGLISH)

    rows = history_rows(tmp_path)
    assert rows[0][:2] == ["Date", "Unique users"]
    assert [(row[0], row[1]) for row in rows[1:]] == [("2026-11-19", "7"), ("2026-11-22", "40")]


def test_warnings_and_hostile_text_are_shown_escaped(tmp_path: Path) -> None:
    report = build_report(checks=FAILED, courses=(("<script>alert(1)</script>", figures()),))

    html = write_local_report(tmp_path, report, report.history, ENGLISH).read_text()

    assert "UNRELIABLE" in html
    assert "Share of rejected records under the threshold" in html
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_an_empty_day_says_no_data_in_russian(tmp_path: Path) -> None:
    report = empty_day()

    html = write_local_report(tmp_path, report, report.history, RUSSIAN).read_text()

    assert RUSSIAN.no_data in html
    assert '<html lang="ru">' in html


def test_no_temporary_file_is_left_behind(tmp_path: Path) -> None:
    report = build_report()
    write_local_report(tmp_path, report, report.history, ENGLISH)
    assert not list(tmp_path.glob("*.tmp"))
