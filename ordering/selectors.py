"""Reads of orders, scoped to who is asking."""

import uuid

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from .errors import OrderNotFound
from .models import Order


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
