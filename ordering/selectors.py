"""Reads of orders, scoped to who is asking, and the operations dashboard's order figures."""

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import CharField, Count, Exists, F, OuterRef, QuerySet
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, TruncMinute
from django.utils import timezone

from messaging.models import DeadLetter, OutboxMessage

from .aggregates import PercentileCont
from .errors import OrderNotFound
from .models import Order, OrderEvent
from .state_machine import TERMINAL_STATUSES, OrderStatus
from .steps import step_of_task

logger = logging.getLogger(__name__)

FLOW_MINUTES = 60  # the dashboard's window: the last hour, minute by minute


def get_order(*, order_id: uuid.UUID) -> Order:
    """An order by id, for the pipeline's steps; OrderNotFound when there is none."""
    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        raise OrderNotFound(f"Order {order_id} does not exist.", extra={"order_id": str(order_id)})
    return order


def order_at_step(*, order_id: uuid.UUID, task_name: str) -> Order | None:
    """The order, if the step `task_name` is due on it (it is in the step's status), else None.

    A step reads this before its work (rules, a gateway call) so that a duplicate or stale
    copy does none; complete_step() checks again under the order's lock.
    """
    order = get_order(order_id=order_id)
    if order.status != step_of_task(task_name).status:
        logger.info("step not due: order=%s is %s (task=%s)", order_id, order.status, task_name)
        return None
    return order


def orders_without_a_way_forward() -> QuerySet[Order]:
    """Orders that are stuck: not terminal, with neither an unpublished outbox row of theirs
    nor a NEW dead letter. One query.

    A message in a queue or in flight is the third way forward, which the database cannot
    see: read this when the queues are empty (a settled chaos run), or treat what it finds
    as candidates to compare with the queues.
    """
    waiting = (
        OutboxMessage.objects.filter(published_at__isnull=True)
        .annotate(order_ref=KT("kwargs__order_id"))
        .filter(order_ref=Cast(OuterRef("pk"), output_field=CharField()))
    )
    to_replay = DeadLetter.objects.filter(order_id=OuterRef("pk"), status=DeadLetter.Status.NEW)
    return Order.objects.exclude(status__in=TERMINAL_STATUSES).filter(
        ~Exists(waiting), ~Exists(to_replay)
    )


def count_orders_by_buyer(*, buyer_id: int, placed_after: datetime, placed_until: datetime) -> int:
    """How many orders a buyer placed in (placed_after, placed_until]."""
    return Order.objects.filter(
        buyer_id=buyer_id, created_at__gt=placed_after, created_at__lte=placed_until
    ).count()


def orders_visible_to(*, user: AbstractBaseUser) -> QuerySet[Order]:
    """A buyer sees their own orders; staff see every order."""
    orders = Order.objects.all()
    return orders if user.is_staff else orders.filter(buyer=user)


def order_for(*, user: AbstractBaseUser, order_id: uuid.UUID | str) -> Order:
    """One order with its history, or OrderNotFound when it is missing or not the user's.

    Someone else's order is "not found", never "forbidden": its existence is not revealed.
    """
    try:
        order_id = uuid.UUID(str(order_id))
    except ValueError:
        raise OrderNotFound("No such order.") from None
    order = orders_visible_to(user=user).prefetch_related("events").filter(pk=order_id).first()
    if order is None:
        raise OrderNotFound("No such order.", extra={"order_id": str(order_id)})
    return order


def statuses_of(*, order_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The current status of each of these orders (missing ones are left out), in one query."""
    return dict(Order.objects.filter(pk__in=list(order_ids)).values_list("pk", "status"))


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
