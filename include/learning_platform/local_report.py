"""The report as local files, for when no Google credentials are configured.

Writes the same tables the sheet would hold: ``learning_platform_<day>.html`` (readable,
with the warnings) and ``learning_platform_<day>.csv`` (the summary tables one after the
other), plus ``learning_platform_history.csv`` with one row per date, rebuilt from the
warehouse each time so that reruns and backfills never duplicate a date; the caller reads that
history under ``warehouse.lock_report``, so a backfill's older snapshot never replaces a newer
one. Files are replaced atomically: a reader never sees half a report.
"""

from __future__ import annotations

import csv
import html
import io
import os
import tempfile
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

from include.learning_platform.rendering import html_table
from include.learning_platform.report_layout import Table, history_table, notices, summary_tables
from include.learning_platform.report_model import DailyReport, DayStats
from include.learning_platform.texts import Texts

HISTORY_FILE = "learning_platform_history.csv"


def write_local_report(
    directory: Path, report: DailyReport, history: Sequence[DayStats], texts: Texts
) -> Path:
    """Write the day's report files into ``directory``; returns the HTML file's path."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"learning_platform_{report.day.isoformat()}"
    tables = summary_tables(report, texts)
    history_tab = history_table(history, texts)
    page = _html_page(report, texts, (*tables, history_tab))
    _replace(directory / f"{stem}.html", page)
    _replace(directory / f"{stem}.csv", _csv(tables))
    _replace(directory / HISTORY_FILE, _csv((history_tab,), titles=False))
    return directory / f"{stem}.html"


def _html_page(report: DailyReport, texts: Texts, tables: Sequence[Table]) -> str:
    title = html.escape(f"{texts.report_title} — {report.day.isoformat()}")
    warnings = "".join(
        f'<p style="color:#b00020;font-weight:bold">{html.escape(n)}</p>' for n in notices(report, texts)
    )
    body = "\n".join(html_table(table, texts.language) for table in tables)
    return (
        f'<!DOCTYPE html>\n<html lang="{texts.language.value}">\n<head><meta charset="utf-8">'
        f'<title>{title}</title></head>\n<body style="font-family:sans-serif">\n'
        f"<h1>{title}</h1>\n{warnings}\n{body}\n</body>\n</html>\n"
    )


def _csv(tables: Sequence[Table], *, titles: bool = True) -> str:
    """Tables one after another (title row, header, rows, blank line); values machine-readable."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for table in tables:
        if titles:
            writer.writerow([table.title])
        writer.writerow([column.label for column in table.columns])
        writer.writerows([_csv_value(value) for value in row] for row in table.rows)
        if titles:
            writer.writerow([])
    return out.getvalue()


def _csv_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return str(round(value, 6))
    return str(value)


def _replace(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, delete=False, suffix=".tmp"
    ) as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)
