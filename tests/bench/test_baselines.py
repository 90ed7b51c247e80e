"""The benchmarks' baseline views do what their names say, and no more."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from billing.models import Charge
from messaging.models import OutboxMessage
from ordering.models import Order, OrderEvent
from ordering.state_machine import OrderStatus

pytestmark = pytest.mark.django_db

BODY = {"product_name": "Bench widget", "quantity": 1, "unit_price": "25.00", "currency": "EUR"}


@pytest.fixture(autouse=True)
def _bench_urls(settings) -> None:
    settings.ROOT_URLCONF = "bench.urls"
    settings.API_THROTTLE_USER_RATE = None  # as the benchmarked processes run


@pytest.fixture(autouse=True)
def _predictable_pipeline(settings) -> None:
    """DESIGN.md's fraud limits and a fake gateway without latency or random timeouts."""
    settings.FRAUD_MAX_ORDER_AMOUNT = Decimal("10000")
    settings.FRAUD_MAX_ORDERS_PER_HOUR = 20
    settings.BILLING_FAKE_DECLINE_OVER = Decimal("5000")
    settings.BILLING_FAKE_FAILURE_RATE = 0.0
    settings.BILLING_FAKE_LATENCY_MS = 0


def test_insert_only_inserts_one_order_and_nothing_else(
    buyer_client, buyer, django_assert_num_queries
):
    with django_assert_num_queries(1):
        response = buyer_client.post("/bench/insert-only/", BODY, format="json")

    assert response.status_code == 201
    order = Order.objects.get()
    assert str(order.id) == response.data["id"]
    assert order.buyer == buyer
    assert order.status == OrderStatus.PENDING
    assert order.total_minor == 2500
    assert not OrderEvent.objects.exists()
    assert not OutboxMessage.objects.exists()


def test_insert_only_validates_like_the_orders_endpoint(buyer_client):
    response = buyer_client.post("/bench/insert-only/", {**BODY, "quantity": 0}, format="json")

    assert response.status_code == 400
    assert not Order.objects.exists()


def test_synchronous_order_is_processed_within_the_request(buyer_client):
    response = buyer_client.post("/bench/synchronous/", BODY, format="json")

    assert response.status_code == 201
    assert response.data["status"] == OrderStatus.PROCESSED
    order = Order.objects.get(pk=response.data["id"])
    assert order.status == OrderStatus.PROCESSED
    assert Charge.objects.get(order_id=order.id).status == Charge.Status.SUCCEEDED


def test_synchronous_declined_card_ends_payment_failed_within_the_request(buyer_client):
    response = buyer_client.post(
        "/bench/synchronous/", {**BODY, "unit_price": "7000.00"}, format="json"
    )

    assert response.status_code == 201
    assert response.data["status"] == OrderStatus.PAYMENT_FAILED
    assert Order.objects.get(pk=response.data["id"]).status == OrderStatus.PAYMENT_FAILED


@pytest.mark.parametrize("path", ["/bench/insert-only/", "/bench/synchronous/"])
def test_anonymous_is_refused(path):
    response = APIClient().post(path, BODY, format="json")

    assert response.status_code == 401
    assert not Order.objects.exists()


def test_project_urls_are_still_served(buyer_client):
    assert buyer_client.get("/api/orders/").status_code == 200
