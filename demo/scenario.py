"""The demo's orders: a mix planned to end in every outcome, placed as the API places them.

Each kind of order gets its fate from the real rules, read from the settings: an amount the
fraud rules refuse, one the fake gateway declines, a cancel by the buyer, a gateway that
kills the worker on every try until RabbitMQ dead-letters the message. Orders go through
`ordering.services.create_order`, the service behind POST /api/orders/, so they are saved,
published and processed exactly like the API's.
"""

import random
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from billing.gateway import get_gateway
from core import money
from fakegateway.gateway import FakeGateway
from fakegateway.services import plan_fake_gateway_fault
from ordering import selectors as order_selectors
from ordering import services as order_services
from ordering.state_machine import OrderStatus

S = OrderStatus
MAX_UNIT_PRICE = Decimal("1000000")
CENT = Decimal("0.01")
# Share of each outcome in a large demo; FAILED orders are few (each kills a worker process
# BROKER_DELIVERY_LIMIT + 1 times), and PROCESSED takes what is left.
SHARES = {S.PAYMENT_FAILED: 0.15, S.CANCELED_FRAUD: 0.15, S.CANCELED: 0.1}
FAILED_EVERY = 25


@dataclass(frozen=True)
class Kind:
    status: OrderStatus
    why: str


def kinds(*, dead_letters: bool) -> tuple[list[Kind], list[str]]:
    """The outcomes this configuration can show, and why any other cannot."""
    fraud_max = settings.FRAUD_MAX_ORDER_AMOUNT
    decline_over = settings.BILLING_FAKE_DECLINE_OVER
    fake_gateway = isinstance(get_gateway(), FakeGateway)
    available = [Kind(S.PROCESSED, "screened and charged")]
    missing = []
    if fake_gateway and decline_over < fraud_max:
        available.append(Kind(S.PAYMENT_FAILED, f"total above {decline_over}: card declined"))
    else:
        missing.append("PAYMENT_FAILED needs the fake gateway declining below the fraud limit")
    available.append(Kind(S.CANCELED_FRAUD, f"total above {fraud_max}: refused as fraud"))
    available.append(Kind(S.CANCELED, "canceled by the buyer before screening"))
    if fake_gateway and dead_letters:
        available.append(
            Kind(S.FAILED, "the gateway kills the worker each try: dead-lettered, then FAILED")
        )
    elif not fake_gateway:
        missing.append("FAILED needs the fake gateway, which can be told to fail")
    else:
        missing.append("FAILED needs RabbitMQ's dead letters and a running dead-letter consumer")
    return available, missing


def plan(*, orders: int, available: list[Kind], seed: int | None = None) -> list[OrderStatus]:
    """The outcome of each order: every available one at least once when there are enough."""
    statuses = [kind.status for kind in available]
    mix = Counter(statuses[:orders])
    if S.FAILED in statuses and orders >= len(statuses):
        mix[S.FAILED] = max(1, orders // FAILED_EVERY)
    for status, share in SHARES.items():
        if status in mix:
            mix[status] = max(mix[status], round(orders * share))
    mix[S.PROCESSED] += orders - sum(mix.values())
    planned = list(mix.elements())
    random.Random(seed).shuffle(planned)  # noqa: S311 - a demo's mix, not a secret
    return planned


def demo_buyers(*, orders: int, username: str = "demo") -> list:
    """One buyer per order, reusing `username`, then `username-2`... each up to the number of
    orders the hourly fraud rule still allows them, so that rule refuses none of these."""
    limit = settings.FRAUD_MAX_ORDERS_PER_HOUR
    now = timezone.now()
    buyers = []
    for n in range(1, orders + 1):
        name = username if n == 1 else f"{username}-{n}"
        buyer, created = get_user_model().objects.get_or_create(username=name)
        if created:
            buyer.set_unusable_password()
            buyer.save(update_fields=["password"])
        placed = order_selectors.count_orders_by_buyer(
            buyer_id=buyer.pk, placed_after=now - timedelta(hours=1), placed_until=now
        )
        buyers += [buyer] * max(0, limit - placed)
        if len(buyers) >= orders:
            return buyers[:orders]
    raise ValueError(f"FRAUD_MAX_ORDERS_PER_HOUR={limit} leaves no room for the demo's buyers")


def place(*, status: OrderStatus, buyer, rng: random.Random) -> uuid.UUID:
    """Place one order that will end in `status`; returns its id."""
    quantity, unit_price = _amount_for(status, rng)
    currency = settings.ORDER_DEFAULT_CURRENCY
    with transaction.atomic():  # the order's message is published once this commits
        order = order_services.create_order(
            buyer=buyer,
            product_name=f"Demo {status.label.lower()} {rng.choice(PRODUCTS)}",
            quantity=quantity,
            unit_price_minor=money.to_minor(unit_price, currency),
            currency=currency,
        ).order
        if status == S.CANCELED:
            order_services.cancel_order(order_id=order.id, actor=buyer)
        elif status == S.FAILED:
            # RabbitMQ dead-letters a message after BROKER_DELIVERY_LIMIT redeliveries.
            crashes = settings.BROKER_DELIVERY_LIMIT + 1
            plan_fake_gateway_fault(order_ref=str(order.id), remaining=crashes, crash=True)
    return order.id


PRODUCTS = ("teapot", "kettle", "mug", "notebook", "lamp", "chair", "bicycle", "camera")


def _amount_for(status: OrderStatus, rng: random.Random) -> tuple[int, Decimal]:
    """A quantity and a unit price in major units, as the settings compared with are."""
    fraud_max = settings.FRAUD_MAX_ORDER_AMOUNT
    decline_over = settings.BILLING_FAKE_DECLINE_OVER
    if status == S.CANCELED_FRAUD:
        return _split(fraud_max + rng.randint(1, 1000))
    if status == S.PAYMENT_FAILED:
        return _split(((decline_over + fraud_max) / 2).quantize(CENT))
    ceiling = min(Decimal(200), decline_over, fraud_max)
    price = (ceiling * rng.randint(5, 100) / 100).quantize(CENT)
    return 1, max(price, CENT)


def _split(total: Decimal) -> tuple[int, Decimal]:
    """A quantity and unit price whose product is at least `total`, within the order rules."""
    quantity = int((total / MAX_UNIT_PRICE).to_integral_value(rounding="ROUND_CEILING")) or 1
    return quantity, (total / quantity).quantize(CENT, rounding="ROUND_CEILING")
