"""Charts drawn on the server as inline SVG (no JavaScript library): the geometry is computed here,
the templates (`templates/portal/_bars_chart.html`, `_weeks_chart.html`) draw it, so every label
is escaped by the template engine. Each chart has a table beside it for screen readers and print.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from .selectors import ProgressRow, WeekPoint

# --- Completion per division or school: horizontal bars --------------------------------------

BAR_WIDTH = 760
BAR_LABEL = 330  # the names' column
BAR_AREA = 340  # 100 %
BAR_HEIGHT = 18
BAR_GAP = 8
LABEL_CHARS = 46


@dataclass(frozen=True)
class Bar:
    label: str  # shortened to fit
    title: str  # the whole name and the figure (a tooltip)
    y: int
    width: float  # of the bar, in px
    text: str  # "48 %", or "—" without students
    text_x: float


@dataclass(frozen=True)
class BarChart:
    bars: list[Bar]
    width: int
    height: int
    label_width: int
    area: int
    ticks: list[tuple[float, str]]  # x, "50 %"


def percent(value: float | None) -> str:
    """48.3 % → "48 %" (a share, for people); None → "—"."""
    if value is None:
        return "—"
    return f"{math.floor(value * 100 + 0.5)} %"


def completion_bars(rows: Sequence[ProgressRow]) -> BarChart:
    """One bar per row: records acknowledged ÷ students."""
    bars = []
    for index, row in enumerate(rows):
        share = row.completion
        width = BAR_AREA * min(max(share or 0.0, 0.0), 1.0)
        label = row.name if len(row.name) <= LABEL_CHARS else row.name[: LABEL_CHARS - 1] + "…"
        text = percent(share)
        bars.append(
            Bar(
                label=label,
                title=f"{row.name}: {text}",
                y=index * (BAR_HEIGHT + BAR_GAP) + 24,
                width=round(width, 1),
                text=text,
                text_x=BAR_LABEL + width + 6,
            )
        )
    height = len(rows) * (BAR_HEIGHT + BAR_GAP) + 30
    ticks = [(BAR_LABEL + BAR_AREA * step / 4, f"{25 * step} %") for step in range(5)]
    return BarChart(
        bars=bars, width=BAR_WIDTH, height=height, label_width=BAR_LABEL, area=BAR_AREA, ticks=ticks
    )


# --- The closing season: running totals per week ---------------------------------------------

WEEK_WIDTH = 760
WEEK_HEIGHT = 300
LEFT, RIGHT, TOP, BOTTOM = 64, 20, 16, 44

SERIES = [
    # figure, label, colour (Okabe–Ito: safe for colour-blind readers), dash pattern
    ("classes_approved", _("Classes approved"), "#0072B2", ""),
    ("records_signed", _("Records signed by the principal"), "#E69F00", "8 4"),
    ("records_acknowledged", _("Records acknowledged by the Ministry"), "#009E73", "2 3"),
]


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    colour: str
    dash: str
    points: str  # "x,y x,y …" for <polyline>
    dots: list[tuple[float, float, int]]  # x, y, value


@dataclass(frozen=True)
class WeekChart:
    width: int
    height: int
    left: int
    top: int
    bottom: float  # the x axis' y
    right: float  # the plot's right edge
    series: list[Series]
    y_ticks: list[tuple[float, int]]  # y, value
    x_ticks: list[tuple[float, str]]  # x, "04/05"
    empty: bool


def _nice_max(value: int) -> int:
    """A round top for the y axis (1, 2, 5 × 10^n) at or above the value."""
    if value <= 0:
        return 4
    exponent = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        top = step * exponent
        if top >= value:
            return math.ceil(top) if top >= 4 else 4
    return int(10 * exponent)


def weeks_chart(points: Sequence[WeekPoint]) -> WeekChart:
    """Three lines over the weeks, x proportional to the date (a quiet week keeps its gap)."""
    plot_w = WEEK_WIDTH - LEFT - RIGHT
    plot_h = WEEK_HEIGHT - TOP - BOTTOM
    axis_y = TOP + plot_h
    top = _nice_max(
        max((max(p.classes_approved, p.records_signed, p.records_acknowledged) for p in points), default=0)
    )
    first = points[0].week if points else dt.date(2000, 1, 3)
    span = max((points[-1].week - first).days, 1) if points else 1

    def x_of(week: dt.date) -> float:
        if len(points) == 1:
            return LEFT + plot_w / 2
        return round(LEFT + plot_w * (week - first).days / span, 1)

    def y_of(value: int) -> float:
        return round(axis_y - plot_h * value / top, 1)

    series = []
    for key, label, colour, dash in SERIES:
        dots = [(x_of(p.week), y_of(getattr(p, key)), getattr(p, key)) for p in points]
        series.append(
            Series(
                key=key,
                label=str(label),
                colour=colour,
                dash=dash,
                points=" ".join(f"{x},{y}" for x, y, _v in dots),
                dots=dots,
            )
        )
    y_ticks = [(y_of(top * step // 4), top * step // 4) for step in range(5)]
    # At most about 10 date labels, so that they never overlap.
    every = max(1, math.ceil(len(points) / 10))
    x_ticks = [(x_of(p.week), p.week.strftime("%d/%m")) for p in points[::every]]
    return WeekChart(
        width=WEEK_WIDTH,
        height=WEEK_HEIGHT,
        left=LEFT,
        top=TOP,
        bottom=axis_y,
        right=LEFT + plot_w,
        series=series,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        empty=not points,
    )
