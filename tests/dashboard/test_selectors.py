"""The dashboard's order figures: counts by status, orders per minute, time to terminal."""

from datetime import UTC, datetime, timedelta

import pytest

from dashboard import selectors
from ordering.models import Order, OrderEvent
from ordering.state_machine import OrderStatus

from ..factories import OrderFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 1, 12, 30, 20, tzinfo=UTC)


def placed(at: datetime, status: str = OrderStatus.PENDING) -> Order:
    order = OrderFactory(status=status)
    Order.objects.filter(pk=order.pk).update(created_at=at)
    OrderEvent.objects.filter(order=order).update(at=at)
    order.refresh_from_db()
    return order


def finished(order: Order, *, after: timedelta, status: str = OrderStatus.PROCESSED) -> None:
    """The order reaches `status` that long after it was placed (its history, as transition()
    writes it)."""
    event = OrderEvent.objects.create(
        order=order, from_status="APPROVED", to_status=status, cause="test", version=2
    )
    OrderEvent.objects.filter(pk=event.pk).update(at=order.created_at + after)
    failed_from = "APPROVED" if status == OrderStatus.FAILED else ""
    Order.objects.filter(pk=order.pk).update(status=status, failed_from=failed_from)


def test_count_orders_by_status_lists_every_status_with_zeros():
    OrderFactory.create_batch(2)
    OrderFactory(status=OrderStatus.PROCESSED)

    counts = selectors.count_orders_by_status()

    assert list(counts) == OrderStatus.values
    assert counts == {s: 0 for s in OrderStatus.values} | {"PENDING": 2, "PROCESSED": 1}


def test_order_flow_counts_each_minute_of_the_last_hour():
    minute = NOW.replace(second=0)
    placed(minute + timedelta(seconds=5))
    placed(minute - timedelta(minutes=2, seconds=-30))
    placed(minute - timedelta(minutes=2, seconds=-59))
    placed(minute - timedelta(minutes=59))  # the window's first minute
    placed(minute - timedelta(minutes=60))  # just before the window
    placed(NOW + timedelta(seconds=1))  # after `now`

    flow = selectors.order_flow(now=NOW)

    assert len(flow.minutes) == 60
    assert flow.minutes[0].minute == minute - timedelta(minutes=59)
    assert flow.minutes[-1].minute == minute
    per_minute = {m.minute: m.placed for m in flow.minutes if m.placed}
    assert per_minute == {
        minute - timedelta(minutes=59): 1,
        minute - timedelta(minutes=2): 2,
        minute: 1,
    }
    assert flow.placed == 4


def test_time_to_terminal_is_p50_and_p95_from_placed_to_terminal_per_minute_and_hour():
    start = NOW - timedelta(minutes=10)
    for seconds in (10, 20, 30, 40):  # all finishing in the same minute or so
        finished(placed(start), after=timedelta(seconds=seconds))
    declined = placed(start + timedelta(minutes=5))
    finished(declined, after=timedelta(seconds=2), status=OrderStatus.PAYMENT_FAILED)
    # Not terminal: a FAILED order, and one only approved.
    failed = placed(start)
    finished(failed, after=timedelta(seconds=3), status=OrderStatus.FAILED)
    placed(start, status=OrderStatus.APPROVED)
    # Finished before the window.
    finished(placed(NOW - timedelta(hours=3)), after=timedelta(seconds=1))

    flow = selectors.order_flow(now=NOW)

    hour = flow.finished
    assert hour.finished == 5
    assert hour.p50 == timedelta(seconds=20)  # of 2, 10, 20, 30, 40
    assert hour.p95 == timedelta(seconds=38)  # 30 + 0.8 x 10, interpolated
    by_minute = {m.minute: m.finished for m in flow.minutes if m.finished.finished}
    # placed at 12:20:20, finished at 12:20:30, :40, :50 and 12:21:00; declined at 12:25:22
    assert by_minute == {
        datetime(2026, 3, 1, 12, 20, tzinfo=UTC): selectors.TimeToTerminal(
            finished=3, p50=timedelta(seconds=20), p95=timedelta(seconds=29)
        ),
        datetime(2026, 3, 1, 12, 21, tzinfo=UTC): selectors.TimeToTerminal(
            finished=1, p50=timedelta(seconds=40), p95=timedelta(seconds=40)
        ),
        datetime(2026, 3, 1, 12, 25, tzinfo=UTC): selectors.TimeToTerminal(
            finished=1, p50=timedelta(seconds=2), p95=timedelta(seconds=2)
        ),
    }


def test_an_hour_without_finished_orders_has_no_percentiles():
    placed(NOW - timedelta(minutes=1))

    flow = selectors.order_flow(now=NOW)

    assert (flow.finished.finished, flow.finished.p50, flow.finished.p95) == (0, None, None)
    assert all(m.finished.p50 is None for m in flow.minutes)


def test_the_dashboard_s_order_figures_cost_4_queries(django_assert_num_queries):
    finished(placed(NOW - timedelta(minutes=3)), after=timedelta(seconds=4))

    # one GROUP BY status; placed per minute, finished per minute, finished over the hour
    with django_assert_num_queries(1):
        selectors.count_orders_by_status()
    with django_assert_num_queries(3):
        selectors.order_flow(now=NOW)
