"""The operations dashboard's order figures: counts by status, the order flow per minute and
time to terminal. Reads of ordering's models, which only the dashboard needs."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, F
from django.db.models.functions import TruncMinute
from django.utils import timezone

from ordering import selectors as order_selectors
from ordering.models import Order, OrderEvent
from ordering.state_machine import TERMINAL_STATUSES, OrderStatus

from .aggregates import PercentileCont

FLOW_MINUTES = 60  # the dashboard's window: the last hour, minute by minute


def count_stuck_orders() -> int:
    """Orders with no way forward for STUCK_ORDER_MINUTES (ordering.selectors.stuck_orders)."""
    return order_selectors.stuck_orders().count()


def count_orders_by_status() -> dict[str, int]:
    """Every status with its number of orders, zeros included, in the state machine's order."""
    counts = dict(Order.objects.order_by().values_list("status").annotate(n=Count("pk")))
    return {status: counts.get(status, 0) for status in OrderStatus.values}


@dataclass(frozen=True)
class TimeToTerminal:
    """Orders that reached a terminal status, and how long they took from being placed."""

    finished: int
    p50: timedelta | None
    p95: timedelta | None


@dataclass(frozen=True)
class FlowMinute:
    """One minute of the order flow: orders placed, and orders finished with their times."""

    minute: datetime
    placed: int
    finished: TimeToTerminal


@dataclass(frozen=True)
class OrderFlow:
    minutes: list[FlowMinute]  # oldest first, every minute of the window, the current one last
    placed: int
    finished: TimeToTerminal  # over the whole window


def order_flow(*, now: datetime | None = None, minutes: int = FLOW_MINUTES) -> OrderFlow:
    """Orders placed and finished per minute, and time to terminal (p50, p95), over a window.

    The window is the last `minutes` whole minutes, the current one included. An order's time
    to terminal runs from its creation to the event that moved it to PROCESSED,
    CANCELED_FRAUD, PAYMENT_FAILED or CANCELED (a status it never leaves, so each order counts
    once), retries and replays included. Three queries, each an aggregate in the database.
    """
    now = now or timezone.now()
    first = now.replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)
    placed = dict(
        Order.objects.order_by()
        .filter(created_at__gte=first, created_at__lte=now)
        .annotate(minute=TruncMinute("created_at"))
        .values_list("minute")
        .annotate(n=Count("pk"))
    )
    terminal_events = OrderEvent.objects.order_by().filter(
        to_status__in=TERMINAL_STATUSES, at__gte=first, at__lte=now
    )
    took = F("at") - F("order__created_at")
    times = {
        "finished": Count("pk"),
        "p50": PercentileCont(took, fraction=0.5),
        "p95": PercentileCont(took, fraction=0.95),
    }
    finished = {
        row.pop("minute"): TimeToTerminal(**row)
        for row in terminal_events.annotate(minute=TruncMinute("at"))
        .values("minute")
        .annotate(**times)
    }
    nothing = TimeToTerminal(finished=0, p50=None, p95=None)
    window = [first + timedelta(minutes=n) for n in range(minutes)]
    return OrderFlow(
        minutes=[
            FlowMinute(minute=m, placed=placed.get(m, 0), finished=finished.get(m, nothing))
            for m in window
        ],
        placed=sum(placed.values()),
        finished=TimeToTerminal(**terminal_events.aggregate(**times)),
    )
