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
# More bars than this are no longer read as a chart (and cost the page): the first ones are
# drawn, in the table's order, and the chart says how many the table has.
MAX_BARS = 60


@dataclass(frozen=True)
class Bar:
    label: str  # shortened to fit
    title: str  # the whole name and the figure (a tooltip)
    y: int
    text_y: int  # the baseline of its texts
    width: float  # of the bar, in px
    text: str  # "48 %", or "—" without students
    text_x: float


@dataclass(frozen=True)
class BarChart:
    bars: list[Bar]
    width: int
    height: int
    label_width: int
    label_x: int  # the names' right edge
    area: int
    ticks: list[tuple[float, str]]  # x, "50 %"
    hidden: int = 0  # rows of the table not drawn (beyond MAX_BARS)


def percent(value: float | None) -> str:
    """48.3 % → "48 %" (a share, for people); None → "—"."""
    if value is None:
        return "—"
    return f"{math.floor(value * 100 + 0.5)} %"


def completion_bars(rows: Sequence[ProgressRow]) -> BarChart:
    """One bar per row (the first MAX_BARS): records acknowledged ÷ students."""
    hidden = max(len(rows) - MAX_BARS, 0)
    rows = rows[:MAX_BARS]
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
                text_y=index * (BAR_HEIGHT + BAR_GAP) + 24 + 13,
                width=round(width, 1),
                text=text,
                text_x=BAR_LABEL + width + 6,
            )
        )
    height = len(rows) * (BAR_HEIGHT + BAR_GAP) + 30
    ticks = [(BAR_LABEL + BAR_AREA * step / 4, f"{25 * step} %") for step in range(5)]
    return BarChart(
        bars=bars,
        width=BAR_WIDTH,
        height=height,
        label_width=BAR_LABEL,
        label_x=BAR_LABEL - 8,
        area=BAR_AREA,
        ticks=ticks,
        hidden=hidden,
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
    dots: list[tuple[float, float, str]]  # x, y, what the point says ("84 % (113)" or "113")


@dataclass(frozen=True)
class WeekChart:
    width: int
    height: int
    left: int
    top: int
    bottom: float  # the x axis' y
    right: float  # the plot's right edge
    series: list[Series]
    y_ticks: list[tuple[float, str]]  # y, label
    x_ticks: list[tuple[float, str]]  # x, "04/05"
    empty: bool
    shares: bool  # the y axis is a share (0–100 %), not a count
    rows: list[tuple[dt.date, list[str]]]  # the table alternative: each week, each series' text


def _nice_step(value: int) -> int:
    """A round step (1, 2, 5 × 10^n) that divides the y axis into at most 5 parts."""
    if value <= 5:
        return 1
    exponent = 10 ** math.floor(math.log10(value / 5))
    for step in (1, 2, 5, 10):
        if value / (step * exponent) <= 5:
            return int(step * exponent)
    return int(10 * exponent)


def weeks_chart(points: Sequence[WeekPoint], *, classes: int = 0, students: int = 0) -> WeekChart:
    """Three lines over the weeks, x proportional to the date (a quiet week keeps its gap).

    With the year's classes and students given, each line is a share (classes approved ÷ classes,
    records ÷ students), so that the three read on one 0–100 % axis (counts of classes and of
    records differ a hundredfold); otherwise counts.
    """
    plot_w = WEEK_WIDTH - LEFT - RIGHT
    plot_h = WEEK_HEIGHT - TOP - BOTTOM
    axis_y = TOP + plot_h
    shares = bool(classes and students)
    whole = {"classes_approved": classes, "records_signed": students, "records_acknowledged": students}

    def scaled(point: WeekPoint, key: str) -> float:
        value = getattr(point, key)
        return value / whole[key] if shares else value

    highest = max((scaled(p, key) for p in points for key, *_rest in SERIES), default=0)
    if shares:
        step_value: float = 0.25
        top: float = max(1.0, math.ceil(highest / step_value) * step_value)
        y_ticks_values = [step_value * n for n in range(round(top / step_value) + 1)]
    else:
        step = _nice_step(int(highest))
        top = max(step * math.ceil(highest / step), step)
        y_ticks_values = [float(value) for value in range(0, int(top) + 1, step)]
    first = points[0].week if points else dt.date(2000, 1, 3)
    span = max((points[-1].week - first).days, 1) if points else 1

    def x_of(week: dt.date) -> float:
        if len(points) == 1:
            return LEFT + plot_w / 2
        return round(LEFT + plot_w * (week - first).days / span, 1)

    def y_of(value: float) -> float:
        return round(axis_y - plot_h * value / top, 1)

    series = []
    for key, label, colour, dash in SERIES:
        dots = [
            (
                x_of(p.week),
                y_of(scaled(p, key)),
                f"{percent(scaled(p, key))} ({getattr(p, key)})" if shares else str(getattr(p, key)),
            )
            for p in points
        ]
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
    y_ticks = [(y_of(value), percent(value) if shares else str(int(value))) for value in y_ticks_values]
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
        shares=shares,
        rows=[(p.week, [s.dots[index][2] for s in series]) for index, p in enumerate(points)],
    )
