"""The dashboard's SVG chart geometry."""

from datetime import UTC, datetime, timedelta

import pytest

from dashboard.charts import HEIGHT, Series, minute_chart, nice_ceiling

MINUTES = [datetime(2026, 3, 1, 12, 0, tzinfo=UTC) + timedelta(minutes=n) for n in range(60)]


@pytest.mark.parametrize(
    ("value", "ceiling"),
    [(0, 1), (0.3, 0.5), (1, 1), (1.2, 2), (3, 5), (7, 10), (10, 10), (11, 20), (420, 500)],
)
def test_the_y_axis_ends_on_a_round_number(value, ceiling):
    assert nice_ceiling(value) == pytest.approx(ceiling)


def test_bars_are_drawn_for_minutes_with_orders_scaled_to_the_axis():
    counts = [0] * 60
    counts[0], counts[59] = 5, 10

    chart = minute_chart(minutes=MINUTES, bars=Series("placed", "placed", counts))

    assert chart.y_top == 10
    assert [bar.title for bar in chart.bars] == ["12:00 placed: 5", "12:59 placed: 10"]
    short, tall = chart.bars
    assert tall.height == pytest.approx(2 * short.height)
    assert tall.y == chart.plot_top
    assert tall.y + tall.height == pytest.approx(chart.plot_bottom)
    assert short.x < tall.x
    assert [tick.text for tick in chart.x_ticks] == ["12:00", "12:15", "12:30", "12:45"]
    assert chart.height == HEIGHT


def test_a_line_breaks_where_a_minute_has_no_value():
    values = [None] * 60
    values[3:6] = [1.0, 2.0, 1.5]  # one run of three minutes
    values[10] = 4.0  # a lone minute: a dot, no segment
    values[20] = 0.0  # nothing to mark: no dot

    (line,) = minute_chart(minutes=MINUTES, lines=[Series("p95", "p95", values)], unit=" s").lines

    assert len(line.segments) == 1
    assert len(line.segments[0].split()) == 3
    assert [dot.title for dot in line.dots] == [
        "12:03 p95: 1 s",
        "12:04 p95: 2 s",
        "12:05 p95: 1.5 s",
        "12:10 p95: 4 s",
    ]
