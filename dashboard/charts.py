"""Charts as SVG geometry, drawn by the dashboard's template: no JavaScript, works offline.

A chart is a time axis of whole minutes, bars (counts) and lines (values that may be
missing: a line breaks where a minute has no value), scaled into a fixed box.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

WIDTH, HEIGHT = 720, 200
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 10, 22  # margins for the axis labels
LABEL_EVERY_MINUTES = 15


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    title: str


@dataclass(frozen=True)
class Line:
    name: str
    css_class: str
    segments: list[str]  # SVG polyline points, one string per unbroken run of minutes
    dots: list[Dot]


@dataclass(frozen=True)
class Tick:
    x: float
    y: float
    text: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    plot_left: float
    plot_right: float
    plot_top: float
    plot_bottom: float
    y_top: float  # the value at the top of the plot
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    bars: list[Bar] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)


@dataclass(frozen=True)
class Series:
    name: str
    css_class: str
    values: Sequence[float | None]


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten that is at least value (1 for nothing)."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value)


def minute_chart(
    *,
    minutes: Sequence[datetime],
    bars: Series | None = None,
    lines: Sequence[Series] = (),
    unit: str = "",
) -> Chart:
    """Bars and lines over the given minutes, the y axis from 0 to a round number."""
    values = [v for s in (bars, *lines) if s for v in s.values if v is not None]
    y_top = nice_ceiling(max(values, default=0))
    plot_bottom, plot_top = HEIGHT - BOTTOM, TOP
    slot = (WIDTH - LEFT - RIGHT) / max(len(minutes), 1)

    def x_of(index: int) -> float:
        return round(LEFT + slot * (index + 0.5), 1)

    def y_of(value: float) -> float:
        return round(plot_bottom - (plot_bottom - plot_top) * value / y_top, 1)

    def title(index: int, name: str, value: float) -> str:
        return f"{minutes[index]:%H:%M} {name}: {value:g}{unit}"

    chart_bars = []
    if bars:
        for i, value in enumerate(bars.values):
            if value:
                top = y_of(value)
                chart_bars.append(
                    Bar(
                        x=round(x_of(i) - slot * 0.4, 1),
                        y=top,
                        width=round(slot * 0.8, 1),
                        height=round(plot_bottom - top, 1),
                        title=title(i, bars.name, value),
                    )
                )
    chart_lines = []
    for series in lines:
        segments, run, dots = [], [], []
        for i, value in enumerate(series.values):
            if value is None:
                segments, run = _close(segments, run), []
                continue
            run.append(f"{x_of(i)},{y_of(value)}")
            if value:  # a dot marks a minute with something to say, with its value
                dots.append(Dot(x=x_of(i), y=y_of(value), title=title(i, series.name, value)))
        chart_lines.append(
            Line(
                name=series.name,
                css_class=series.css_class,
                segments=_close(segments, run),
                dots=dots,
            )
        )
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        plot_left=LEFT,
        plot_right=WIDTH - RIGHT,
        plot_top=plot_top,
        plot_bottom=plot_bottom,
        y_top=y_top,
        y_ticks=[Tick(x=LEFT - 4, y=y_of(v), text=f"{v:g}{unit}") for v in (0, y_top / 2, y_top)],
        x_ticks=[
            Tick(x=x_of(i), y=HEIGHT - 6, text=f"{m:%H:%M}")
            for i, m in enumerate(minutes)
            if m.minute % LABEL_EVERY_MINUTES == 0
        ],
        bars=chart_bars,
        lines=chart_lines,
    )


def _close(segments: list[str], run: list[str]) -> list[str]:
    return [*segments, " ".join(run)] if len(run) > 1 else segments
