"""Queries per pipeline step, pinned: a change that adds a round trip to a hot path shows here.

Measured with python -m bench pipeline (docs/benchmarks/README.md); each number is the
step's whole cost in database round trips, transaction statements included.
"""

import uuid

import pytest

from billing import services as billing
from fraud import services as fraud
from ordering import services as ordering

from .factories import OrderFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_accepting_an_order_costs_5_queries(django_assert_num_queries):
    buyer = UserFactory()

    # savepoint, order, history event, outbox row, release
    with django_assert_num_queries(5):
        ordering.create_order(
            buyer=buyer, product_name="Teapot", quantity=1, unit_price_minor=2500, currency="EUR"
        )


def test_screening_an_order_costs_12_queries(django_assert_num_queries):
    order = OrderFactory()

    # read the order, 2 rules, then one transaction: lock, update, event, the buyer's webhook
    # endpoints, claim, assessment, outbox row (with its savepoint pair and the commit)
    with django_assert_num_queries(12):
        fraud.screen(order_id=order.id, message_id=uuid.uuid4())


def test_charging_an_order_costs_14_queries(django_assert_num_queries):
    order = OrderFactory(status="APPROVED")

    # read the order, upsert the charge, the fake gateway's fault check and ledger upsert,
    # then one transaction: lock, update, event, the buyer's webhook endpoints, claim, charge
    # result
    with django_assert_num_queries(14):
        billing.charge(order_id=order.id, message_id=uuid.uuid4())
