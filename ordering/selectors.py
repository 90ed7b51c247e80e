"""Reads of orders for the pipeline and the API, scoped to who is asking."""

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import CharField, Exists, OuterRef, QuerySet
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.utils import timezone

from messaging.models import DeadLetter, OutboxMessage

from .errors import OrderNotFound
from .models import Order
from .state_machine import TERMINAL_STATUSES
from .steps import step_of_task

logger = logging.getLogger(__name__)


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


def orders_without_a_way_forward(*, unchanged_for: timedelta | None = None) -> QuerySet[Order]:
    """Orders that are stuck: not terminal, with neither an unpublished outbox row of theirs
    nor a NEW dead letter (and, with `unchanged_for`, not changed for that long). One query.

    A message in a queue or in flight is the third way forward, which the database cannot
    see: read this when the queues are empty (a settled chaos run), or give the pipeline
    time with `unchanged_for` and treat what it finds as candidates to compare with the
    queues (a backlog older than that shows up too).
    """
    waiting = (
        OutboxMessage.objects.filter(published_at__isnull=True)
        .annotate(order_ref=KT("kwargs__order_id"))
        .filter(order_ref=Cast(OuterRef("pk"), output_field=CharField()))
    )
    to_replay = DeadLetter.objects.filter(subject_id=OuterRef("pk"), status=DeadLetter.Status.NEW)
    orders = Order.objects.exclude(status__in=TERMINAL_STATUSES)
    if unchanged_for is not None:
        orders = orders.filter(updated_at__lte=timezone.now() - unchanged_for)
    return orders.filter(~Exists(waiting), ~Exists(to_replay))


def stuck_orders() -> QuerySet[Order]:
    """Orders with no way forward, unchanged for STUCK_ORDER_MINUTES: what the sweep
    (ordering/tasks.py) reports and the dashboard counts."""
    return orders_without_a_way_forward(
        unchanged_for=timedelta(minutes=settings.STUCK_ORDER_MINUTES)
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
