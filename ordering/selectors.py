"""Reads of orders for the pipeline and the API, scoped to who is asking."""

import uuid
from collections.abc import Iterable
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from .errors import OrderNotFound
from .models import Order


def get_order(*, order_id: uuid.UUID) -> Order:
    """An order by id, for the pipeline's steps; OrderNotFound when there is none."""
    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        raise OrderNotFound(f"Order {order_id} does not exist.", extra={"order_id": str(order_id)})
    return order


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
