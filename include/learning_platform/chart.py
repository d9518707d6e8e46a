"""The email's chart of the last days: submits and runs as bars, the share of successful submits as a line.

matplotlib is imported inside the function (task code imports this module, DAG parsing must
stay light) and only its object-oriented API is used with the Agg canvas: no pyplot, so no
global figure state and no GUI backend in a worker.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from datetime import date, timedelta

from include.learning_platform.rendering import NO_BREAK_SPACE, format_cell
from include.learning_platform.report_model import DayStats
from include.learning_platform.texts import Language, Texts

WIDTH_IN, HEIGHT_IN, DPI = 7.2, 3.0, 100  # 720 x 300 pixels
MAX_DATE_TICKS = 8
BAR_WIDTH = 0.4
SUBMITS_COLOR = "#1a73e8"
RUNS_COLOR = "#a8c7fa"
SHARE_COLOR = "#e37400"
# Month names are fixed here rather than taken from the process locale, which is C on workers.
ENGLISH_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def render_history_chart(
    history: Sequence[DayStats], texts: Texts, *, last_day: date, days: int = 30
) -> bytes:
    """A PNG of the ``days`` days ending with ``last_day``; days missing from ``history`` are gaps."""
    if days < 1:
        raise ValueError(f"the chart needs at least one day, got days={days}")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator

    first_day = last_day - timedelta(days=days - 1)
    by_day = {stats.day: stats for stats in history if first_day <= stats.day <= last_day}
    calendar = [first_day + timedelta(days=offset) for offset in range(days)]
    present = [index for index, day in enumerate(calendar) if day in by_day]
    # NaN, not 0: matplotlib breaks the line there, and "no data" must not read as "nobody succeeded".
    shares = [_share(by_day.get(day)) for day in calendar]

    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    counts = figure.add_subplot()
    counts.bar(
        [index - BAR_WIDTH / 2 for index in present],
        [by_day[calendar[index]].figures.submits for index in present],
        BAR_WIDTH,
        color=SUBMITS_COLOR,
    )
    counts.bar(
        [index + BAR_WIDTH / 2 for index in present],
        [by_day[calendar[index]].figures.runs for index in present],
        BAR_WIDTH,
        color=RUNS_COLOR,
    )
    counts.set_xlim(-0.6, days - 0.4)
    if any(
        by_day[calendar[index]].figures.submits or by_day[calendar[index]].figures.runs for index in present
    ):
        counts.set_ylim(bottom=0)
    else:
        counts.set_ylim(0, 1)  # nothing to scale to: an axis from 0 to 1 rather than matplotlib's -0.05
    counts.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True, min_n_ticks=1))
    counts.yaxis.set_major_formatter(
        FuncFormatter(lambda value, _: format_cell(round(value), texts.language))
    )
    ticks = list(range(days - 1, -1, -math.ceil(days / MAX_DATE_TICKS)))[::-1]
    counts.xaxis.set_major_locator(FixedLocator(ticks))
    counts.xaxis.set_major_formatter(
        FuncFormatter(lambda value, _: _day_label(calendar[round(value)], texts.language))
    )
    counts.grid(axis="y", color="#e0e0e0", linewidth=0.8)
    counts.set_axisbelow(True)
    counts.tick_params(labelsize=8)

    share_axis = counts.twinx()
    share_axis.plot(range(days), shares, color=SHARE_COLOR, linewidth=1.6, marker="o", markersize=3)
    share_axis.set_ylim(0, 1)
    share_axis.yaxis.set_major_locator(FixedLocator([0, 0.25, 0.5, 0.75, 1]))
    share_axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: _percent(value, texts.language)))
    share_axis.tick_params(labelsize=8, colors=SHARE_COLOR)

    figure.suptitle(texts.chart_title, fontsize=11, fontweight="bold")
    figure.legend(
        handles=[
            Patch(color=SUBMITS_COLOR, label=texts.submits),
            Patch(color=RUNS_COLOR, label=texts.runs),
            Line2D([], [], color=SHARE_COLOR, marker="o", markersize=3, label=texts.success_share),
        ],
        loc="outside lower center",
        ncols=3,
        frameon=False,
        fontsize=8,
    )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _share(stats: DayStats | None) -> float:
    if stats is None or stats.figures.success_share is None:
        return math.nan
    return stats.figures.success_share


def _day_label(day: date, language: Language) -> str:
    if language is Language.RU:
        return day.strftime("%d.%m")
    return f"{ENGLISH_MONTHS[day.month - 1]} {day.day}"


def _percent(share: float, language: Language) -> str:
    number = f"{share * 100:.0f}"
    return f"{number}{NO_BREAK_SPACE}%" if language is Language.RU else f"{number}%"
