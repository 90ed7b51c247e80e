"""ordering.services called directly: create, cancel and the guarded transition()."""

import uuid

import pytest

from ordering import services
from ordering.errors import IdempotencyKeyReused, OrderNotCancelable, OrderNotFound
from ordering.models import Order, OrderEvent
from ordering.state_machine import OrderStatus

from ..factories import OrderFactory
from .test_state_machine import EXPECTED_ALLOWED

pytestmark = pytest.mark.django_db
S = OrderStatus


def order_in(status: OrderStatus, *, failed_from: str = "") -> Order:
    return OrderFactory(status=status, failed_from=failed_from)


@pytest.mark.parametrize(("current", "to"), sorted(EXPECTED_ALLOWED))
def test_allowed_transition_is_applied_with_version_and_history(current, to):
    order = order_in(current)
    message_id = uuid.uuid4()

    result = services.transition(order_id=order.id, to=to, cause="test", message_id=message_id)

    order.refresh_from_db()
    assert result.applied
    assert (order.status, order.version) == (to, 2)
    event = order.events.get(version=2)
    assert (event.from_status, event.to_status, event.cause, event.message_id) == (
        current,
        to,
        "test",
        message_id,
    )
    assert order.failed_from == (current if to == S.FAILED else "")


REFUSED = [
    (current, to)
    for current in S
    if current != S.FAILED
    for to in S
    if (current, to) not in EXPECTED_ALLOWED
]


@pytest.mark.parametrize(("current", "to"), REFUSED)
def test_refused_transition_changes_nothing_and_returns_the_current_state(current, to, caplog):
    order = order_in(current)

    result = services.transition(order_id=order.id, to=to, cause="late message")

    order.refresh_from_db()
    assert not result.applied
    assert result.order.status == current
    assert (order.status, order.version, order.events.count()) == (current, 1, 1)
    assert "transition refused" in caplog.text


@pytest.mark.parametrize("failed_from", [S.PENDING, S.APPROVED])
def test_failed_order_resumes_from_where_it_failed_and_nowhere_else(failed_from):
    order = order_in(S.FAILED, failed_from=failed_from)
    elsewhere = S.APPROVED if failed_from == S.PENDING else S.PENDING

    refused = services.transition(order_id=order.id, to=elsewhere, cause="replay")
    resumed = services.transition(order_id=order.id, to=failed_from, cause="replay")

    order.refresh_from_db()
    assert (refused.applied, resumed.applied) == (False, True)
    assert (order.status, order.failed_from, order.version) == (failed_from, "", 2)


def test_transition_of_a_missing_order_raises_order_not_found():
    with pytest.raises(OrderNotFound):
        services.transition(order_id=uuid.uuid4(), to=S.APPROVED, cause="test")


def test_create_order_stores_a_pending_order_with_its_total_and_first_event(buyer):
    result = services.create_order(
        buyer=buyer, product_name="Widget", quantity=3, unit_price_minor=1999, currency="EUR"
    )

    order = Order.objects.get()
    assert result.created and result.order == order
    assert (order.status, order.total_minor, order.version) == (S.PENDING, 5997, 1)
    assert list(order.events.values_list("from_status", "to_status", "cause")) == [
        ("", S.PENDING, "created"),
    ]


def test_create_order_with_a_known_key_and_same_order_returns_the_first(buyer):
    fields = {
        "product_name": "Widget",
        "quantity": 1,
        "unit_price_minor": 500,
        "currency": "EUR",
    }
    first = services.create_order(buyer=buyer, idempotency_key="abc", **fields)
    again = services.create_order(buyer=buyer, idempotency_key="abc", **fields)

    assert (first.created, again.created) == (True, False)
    assert again.order.id == first.order.id
    assert Order.objects.count() == 1 and OrderEvent.objects.count() == 1


@pytest.mark.parametrize(
    "other",
    [
        {"quantity": 2},
        {"unit_price_minor": 501},
        {"currency": "USD"},
        {"product_name": "Gadget"},
    ],
    ids=["quantity", "price", "currency", "product"],
)
def test_create_order_with_a_known_key_and_another_order_is_refused(buyer, other):
    fields = {
        "product_name": "Widget",
        "quantity": 1,
        "unit_price_minor": 500,
        "currency": "EUR",
    }
    services.create_order(buyer=buyer, idempotency_key="abc", **fields)

    with pytest.raises(IdempotencyKeyReused):
        services.create_order(buyer=buyer, idempotency_key="abc", **(fields | other))
    assert Order.objects.count() == 1


def test_cancel_order_cancels_a_pending_order(buyer):
    order = OrderFactory(buyer=buyer)

    canceled = services.cancel_order(order_id=order.id, actor=buyer)

    assert canceled.status == S.CANCELED
    assert order.events.latest("version").cause == f"canceled by {buyer}"


@pytest.mark.parametrize("status", [s for s in S if s != S.PENDING])
def test_cancel_order_refuses_an_order_that_is_not_pending(status, buyer):
    order = order_in(status, failed_from=S.PENDING if status == S.FAILED else "")

    with pytest.raises(OrderNotCancelable) as refused:
        services.cancel_order(order_id=order.id, actor=buyer)

    assert refused.value.extra == {"status": status}
    order.refresh_from_db()
    assert order.status == status
