"""The fraud rules: each a small function of the order, listed once in RULES.

A rule returns why it fired, or None. The hourly count is taken up to the order's own
creation time, so it does not change when the order is screened again (a retry, a replay);
the amount limit and the blocklist are read as they are at screening time.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings

from core import money
from ordering import selectors as order_selectors

from .models import BlockedBuyer

if TYPE_CHECKING:
    from ordering.models import Order


@dataclass(frozen=True)
class Rule:
    name: str
    weight: int
    check: Callable[["Order"], str | None]


def total_above_limit(order: "Order") -> str | None:
    limit = settings.FRAUD_MAX_ORDER_AMOUNT
    # The total in major units, where the setting is: an exact Decimal comparison.
    total = money.to_major(order.total_minor, order.currency)
    if total > limit:
        return f"total {total} {order.currency} is above {limit}"
    return None


def buyer_blocked(order: "Order") -> str | None:
    block = BlockedBuyer.objects.filter(buyer_id=order.buyer_id).first()
    if block is not None:
        return f"buyer is blocked: {block.reason or 'no reason given'}"
    return None


def too_many_orders_in_an_hour(order: "Order") -> str | None:
    limit = settings.FRAUD_MAX_ORDERS_PER_HOUR
    placed = order_selectors.count_orders_by_buyer(
        buyer_id=order.buyer_id,
        placed_after=order.created_at - timedelta(hours=1),
        placed_until=order.created_at,
    )
    if placed > limit:
        return f"{placed} orders in the hour up to this one, more than {limit}"
    return None


REJECT_SCORE = 100

RULES: tuple[Rule, ...] = (
    Rule("total_above_limit", 100, total_above_limit),
    Rule("buyer_blocked", 100, buyer_blocked),
    Rule("too_many_orders_in_an_hour", 100, too_many_orders_in_an_hour),
)
