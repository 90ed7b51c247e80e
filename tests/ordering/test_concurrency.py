"""Concurrent writers on real PostgreSQL: row locks, not luck, decide who wins."""

import threading
from collections.abc import Callable

import pytest
from django.db import connection

from ordering import services
from ordering.errors import IdempotencyKeyReused
from ordering.models import Order
from ordering.state_machine import OrderStatus

from ..factories import OrderFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)
S = OrderStatus
ROUNDS = 20


def run_together(*calls: Callable[[], object]) -> list[object]:
    """Run each call in its own thread (own connection), released at the same moment."""
    start = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def worker(index: int, call: Callable[[], object]) -> None:
        try:
            start.wait()
            results[index] = call()
        except Exception as error:  # handed back to the test, which asserts on it
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=pair) for pair in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_two_conflicting_transitions_on_one_order_exactly_one_wins():
    for _ in range(ROUNDS):
        order = OrderFactory()

        approve, cancel = run_together(
            lambda order=order: services.transition(order_id=order.id, to=S.APPROVED, cause="a"),
            lambda order=order: services.transition(order_id=order.id, to=S.CANCELED, cause="b"),
        )

        order.refresh_from_db()
        assert [approve.applied, cancel.applied].count(True) == 1
        winner = approve if approve.applied else cancel
        assert order.status == winner.order.status
        assert order.version == 2
        assert order.events.count() == 2


def test_the_same_transition_twice_at_once_is_applied_once():
    for _ in range(ROUNDS):
        order = OrderFactory()

        results = run_together(
            *[
                lambda order=order: services.transition(
                    order_id=order.id, to=S.APPROVED, cause="dup"
                )
            ]
            * 2
        )

        assert [result.applied for result in results].count(True) == 1
        order.refresh_from_db()
        assert (order.version, order.events.count()) == (2, 2)


def test_concurrent_creates_with_one_idempotency_key_make_one_order():
    buyer = UserFactory()
    fields = {
        "product_name": "Widget",
        "quantity": 1,
        "unit_price_minor": 500,
        "currency": "EUR",
    }

    results = run_together(
        *[lambda: services.create_order(buyer=buyer, idempotency_key="same", **fields)] * 4
    )

    assert not [r for r in results if isinstance(r, Exception)], results
    assert [result.created for result in results].count(True) == 1
    assert len({result.order.id for result in results}) == 1
    assert Order.objects.filter(buyer=buyer).count() == 1


def test_concurrent_creates_with_one_key_but_different_orders_make_one_and_refuse_the_rest():
    buyer = UserFactory()

    def create(quantity: int):
        return lambda: services.create_order(
            buyer=buyer,
            idempotency_key="same",
            product_name="Widget",
            quantity=quantity,
            unit_price_minor=500,
            currency="EUR",
        )

    results = run_together(create(1), create(2), create(3))

    assert sum(isinstance(r, IdempotencyKeyReused) for r in results) == 2
    assert Order.objects.filter(buyer=buyer).count() == 1
