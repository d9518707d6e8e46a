"""The email's history chart: a real PNG of the right size, in any language, with gaps for missing days."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pytest
from matplotlib.image import imread
from PIL import Image

from devservices.environment import PROJECT_ROOT
from include.learning_platform.chart import SHARE_COLOR, SUBMITS_COLOR, render_history_chart
from include.learning_platform.report_model import DayStats, Figures
from include.learning_platform.texts import ENGLISH, RUSSIAN

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LAST_DAY = date(2026, 11, 22)


def day_stats(day: date, *, submits: int = 120, runs: int = 300, successful: int | None = 45) -> DayStats:
    start = datetime.combine(day, time(), tzinfo=UTC)
    successful = successful if successful is not None else 0
    return DayStats(
        day=day,
        interval_start=start,
        interval_end=start + timedelta(days=1),
        fetched=submits + runs,
        loaded=submits + runs,
        quarantined=0,
        flagged=0,
        figures=Figures(
            unique_users=40,
            runs=runs,
            submits=submits,
            successful_submits=successful,
            success_share=successful / submits if submits else None,
            avg_submits_per_user=submits / 40,
            avg_successful_submits_per_user=successful / 40,
        ),
        computed_at=start + timedelta(days=1, minutes=5),
        failed_checks=(),
    )


def month(last_day: date = LAST_DAY, days: int = 30) -> list[DayStats]:
    return [day_stats(last_day - timedelta(days=back), submits=100 + back) for back in reversed(range(days))]


def test_the_chart_is_a_png_of_about_720_by_300_pixels() -> None:
    png = render_history_chart(month(), ENGLISH, last_day=LAST_DAY)

    assert png.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        assert image.size == (720, 300)
    assert imread(io.BytesIO(png)).shape[:2] == (300, 720)


def test_the_bars_and_the_line_are_drawn_in_their_colours() -> None:
    pixels = _pixels(render_history_chart(month(), ENGLISH, last_day=LAST_DAY))

    assert _count(pixels, SUBMITS_COLOR) > 1000
    assert _count(pixels, SHARE_COLOR) > 500


def test_russian_labels_render_too() -> None:
    png = render_history_chart(month(), RUSSIAN, last_day=LAST_DAY)

    assert png.startswith(PNG_SIGNATURE)
    assert png != render_history_chart(month(), ENGLISH, last_day=LAST_DAY)


def test_an_empty_history_still_renders_a_chart() -> None:
    png = render_history_chart([], ENGLISH, last_day=LAST_DAY)

    assert imread(io.BytesIO(png)).shape[:2] == (300, 720)
    assert _count(_pixels(png), SUBMITS_COLOR) < 300, "only the legend's patch is blue"


def test_days_without_a_share_render() -> None:
    history = [day_stats(LAST_DAY - timedelta(days=1), submits=0, successful=None), day_stats(LAST_DAY)]

    png = render_history_chart(history, ENGLISH, last_day=LAST_DAY)

    assert png.startswith(PNG_SIGNATURE)


def test_a_missing_day_breaks_the_share_line_instead_of_drawing_it_to_zero() -> None:
    days = [LAST_DAY - timedelta(days=back) for back in (2, 1, 0)]
    connected = render_history_chart([day_stats(day) for day in days], ENGLISH, last_day=LAST_DAY, days=3)
    with_gap = render_history_chart(
        [day_stats(days[0]), day_stats(days[2])], ENGLISH, last_day=LAST_DAY, days=3
    )
    share_unknown = render_history_chart(
        [day_stats(days[0]), day_stats(days[1], submits=0, successful=None), day_stats(days[2])],
        ENGLISH,
        last_day=LAST_DAY,
        days=3,
    )
    at_zero = render_history_chart(
        [day_stats(days[0]), day_stats(days[1], successful=0), day_stats(days[2])],
        ENGLISH,
        last_day=LAST_DAY,
        days=3,
    )

    line = _count(_pixels(connected), SHARE_COLOR)
    assert _count(_pixels(with_gap), SHARE_COLOR) < line - 200
    assert _count(_pixels(share_unknown), SHARE_COLOR) < line - 200
    assert _count(_pixels(at_zero), SHARE_COLOR) > _count(_pixels(with_gap), SHARE_COLOR) + 200, (
        "a real zero is drawn: the line goes down to the axis and up again"
    )


def test_days_outside_the_window_are_left_out() -> None:
    window = month(days=7)
    older = [day_stats(LAST_DAY - timedelta(days=back)) for back in range(8, 20)]
    later = [day_stats(LAST_DAY + timedelta(days=1))]

    assert render_history_chart([*older, *window, *later], ENGLISH, last_day=LAST_DAY, days=7) == (
        render_history_chart(window, ENGLISH, last_day=LAST_DAY, days=7)
    )


def test_a_chart_of_no_days_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one day"):
        render_history_chart([], ENGLISH, last_day=LAST_DAY, days=0)


def test_importing_the_module_loads_no_matplotlib_and_rendering_never_loads_pyplot() -> None:
    script = (
        "import sys\n"
        "from datetime import date\n"
        "from include.learning_platform import chart\n"
        "from include.learning_platform.texts import ENGLISH\n"
        "assert 'matplotlib' not in sys.modules\n"
        "chart.render_history_chart([], ENGLISH, last_day=date(2026, 11, 22))\n"
        "assert 'matplotlib' in sys.modules\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr


def _pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"), dtype=int)


def _count(pixels: np.ndarray, colour: str) -> int:
    """Pixels close to ``colour`` (anti-aliased edges included)."""
    target = np.array([int(colour[index : index + 2], 16) for index in (1, 3, 5)])
    return int((np.abs(pixels - target).sum(axis=2) < 60).sum())
