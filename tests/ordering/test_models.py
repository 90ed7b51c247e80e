"""The database itself refuses bad orders, whatever code writes them."""

import pytest
from django.db import IntegrityError, transaction

from ordering.models import Order, OrderEvent
from ordering.state_machine import OrderStatus

from ..factories import OrderFactory, UserFactory

pytestmark = pytest.mark.django_db


def valid_order_fields(**overrides) -> dict:
    fields = {
        "buyer": UserFactory(),
        "product_name": "Widget",
        "quantity": 3,
        "unit_price_minor": 1000,
        "currency": "EUR",
        "total_minor": 3000,
    }
    return fields | overrides


def test_a_valid_order_is_stored():
    order = Order.objects.create(**valid_order_fields())
    order.refresh_from_db()
    assert (order.status, order.version, order.failed_from) == (OrderStatus.PENDING, 1, "")


def test_the_largest_order_is_stored_and_checked_exactly():
    """1000 x 1,000,000.00 in cents: beyond a float's exact integers once multiplied further,
    but exact in a bigint, so the total constraint needs no tolerance."""
    order = Order.objects.create(
        **valid_order_fields(
            quantity=1000, unit_price_minor=100_000_000, total_minor=100_000_000_000
        )
    )
    order.refresh_from_db()
    assert (order.unit_price_minor, order.total_minor) == (100_000_000, 100_000_000_000)


@pytest.mark.parametrize(
    ("overrides", "constraint"),
    [
        ({"product_name": ""}, "order_product_name_not_empty"),
        ({"quantity": 0, "total_minor": 0}, "order_quantity_in_range"),
        ({"quantity": 1001, "total_minor": 1_001_000}, "order_quantity_in_range"),
        ({"unit_price_minor": 0, "total_minor": 0}, "order_unit_price_in_range"),
        ({"unit_price_minor": -100, "total_minor": -300}, "order_unit_price_in_range"),
        (
            {"unit_price_minor": 100_000_001, "total_minor": 300_000_003},
            "order_unit_price_in_range",
        ),
        ({"currency": "eur"}, "order_currency_iso4217"),
        ({"currency": "E1R"}, "order_currency_iso4217"),
        ({"total_minor": 2999}, "order_total_is_quantity_times_price"),
        ({"total_minor": 3001}, "order_total_is_quantity_times_price"),
        ({"status": "SHIPPED"}, "order_status_known"),
        ({"status": OrderStatus.FAILED}, "order_failed_from_only_when_failed"),
        ({"failed_from": OrderStatus.PENDING}, "order_failed_from_only_when_failed"),
        (
            {"status": OrderStatus.FAILED, "failed_from": OrderStatus.PROCESSED},
            "order_failed_from_only_when_failed",
        ),
        ({"version": 0}, "order_version_positive"),
    ],
)
def test_database_refuses_an_invalid_order(overrides, constraint):
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        Order.objects.create(**valid_order_fields(**overrides))


def test_product_name_longer_than_200_chars_is_refused_by_the_database():
    with pytest.raises(Exception, match="too long"), transaction.atomic():
        Order.objects.create(**valid_order_fields(product_name="x" * 201))


def test_idempotency_key_is_unique_per_buyer():
    buyer = UserFactory()
    Order.objects.create(**valid_order_fields(buyer=buyer, idempotency_key="k-1"))
    duplicate = valid_order_fields(buyer=buyer, idempotency_key="k-1")
    with pytest.raises(IntegrityError, match="unique_per_buyer"), transaction.atomic():
        Order.objects.create(**duplicate)


def test_same_idempotency_key_is_fine_for_another_buyer_and_absent_keys_never_clash():
    Order.objects.create(**valid_order_fields(idempotency_key="k-1"))
    Order.objects.create(**valid_order_fields(idempotency_key="k-1"))
    buyer = UserFactory()
    Order.objects.create(**valid_order_fields(buyer=buyer))
    Order.objects.create(**valid_order_fields(buyer=buyer))
    assert Order.objects.count() == 4


def test_two_history_events_cannot_claim_the_same_version():
    order = OrderFactory()
    with pytest.raises(IntegrityError, match="order_event_version_unique"), transaction.atomic():
        OrderEvent.objects.create(order=order, to_status=order.status, cause="dup", version=1)
