"""billing.services.charge() called directly, as the billing.charge_order task would call it."""

import uuid
from decimal import Decimal

import pytest

from billing import services
from billing.errors import GatewayRequestRejected, GatewayTimeout
from billing.models import Charge
from fakegateway.models import FakeGatewayCharge, FakeGatewayFault
from ordering import services as order_services
from ordering.errors import OrderNotFound
from ordering.models import Order
from ordering.state_machine import OrderStatus

from ..factories import OrderFactory
from ..ordering.test_concurrency import run_together

pytestmark = pytest.mark.django_db
S = OrderStatus
Outcome = FakeGatewayCharge.Outcome


def approved_order(**fields) -> Order:
    return OrderFactory(status=S.APPROVED, **fields)


def charge(order: Order, message_id: uuid.UUID | None = None) -> uuid.UUID:
    message_id = message_id or uuid.uuid4()
    services.charge(order_id=order.id, message_id=message_id)
    return message_id


def ledger(order: Order) -> list[FakeGatewayCharge]:
    """What the payment provider holds for this order, whatever key was used."""
    return list(FakeGatewayCharge.objects.filter(order_ref=str(order.id)))


def test_approved_order_is_charged_once_and_processed():
    order = approved_order()

    message_id = charge(order)

    order.refresh_from_db()
    assert (order.status, order.version) == (S.PROCESSED, 2)
    [entry] = ledger(order)
    assert (entry.outcome, entry.amount_minor, entry.currency) == (
        Outcome.CHARGED,
        order.total_minor,
        "EUR",
    )
    assert entry.idempotency_key == str(order.id)
    row = Charge.objects.get(order=order)
    assert (row.status, row.gateway_reference, row.amount_minor, row.attempts) == (
        Charge.Status.SUCCEEDED,
        entry.reference,
        order.total_minor,
        1,
    )
    event = order.events.get(version=2)
    assert (event.from_status, event.to_status, event.message_id) == (
        S.APPROVED,
        S.PROCESSED,
        message_id,
    )
    assert event.cause == f"billing: charged {entry.reference}"


def test_declined_card_fails_the_payment_without_raising(settings):
    settings.BILLING_FAKE_DECLINE_OVER = Decimal("30")
    order = approved_order(quantity=2, unit_price_minor=1999)

    message_id = charge(order)

    order.refresh_from_db()
    assert (order.status, order.version) == (S.PAYMENT_FAILED, 2)
    row = Charge.objects.get(order=order)
    assert row.status == Charge.Status.DECLINED
    assert row.decline_reason == "card declined for 39.98 EUR"
    assert [entry.outcome for entry in ledger(order)] == [Outcome.DECLINED]
    assert order.events.get(version=2).message_id == message_id


def test_duplicate_message_charges_once():
    order = approved_order()
    message_id = charge(order)

    charge(order, message_id)

    order.refresh_from_db()
    assert (order.status, order.version, order.events.count()) == (S.PROCESSED, 2, 2)
    [entry] = ledger(order)
    assert entry.requests == 1
    assert Charge.objects.get(order=order).attempts == 1


def test_two_messages_for_one_order_charge_once():
    order = approved_order()
    charge(order)

    charge(order)

    order.refresh_from_db()
    assert (order.status, order.version) == (S.PROCESSED, 2)
    assert len(ledger(order)) == 1
    assert Charge.objects.filter(order=order).count() == 1


@pytest.mark.parametrize("after_charge", [False, True], ids=["before-charging", "answer-lost"])
def test_gateway_timeout_is_raised_and_the_retry_charges_exactly_once(after_charge):
    order = approved_order()
    FakeGatewayFault.objects.create(remaining=1, after_charge=after_charge)
    message_id = uuid.uuid4()

    with pytest.raises(GatewayTimeout):
        charge(order, message_id)

    order.refresh_from_db()
    assert (order.status, order.version) == (S.APPROVED, 1)
    row = Charge.objects.get(order=order)
    assert (row.status, row.attempts) == (Charge.Status.PENDING, 1)
    assert "fake gateway" in row.last_error

    charge(order, message_id)  # the same message, redelivered by the broker's retry

    order.refresh_from_db()
    assert order.status == S.PROCESSED
    [entry] = ledger(order)
    assert entry.outcome == Outcome.CHARGED
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == (Charge.Status.SUCCEEDED, 2, "")
    assert row.gateway_reference == entry.reference


@pytest.mark.parametrize(
    ("status", "failed_from"),
    [
        (S.PENDING, ""),
        (S.PROCESSED, ""),
        (S.CANCELED, ""),
        (S.CANCELED_FRAUD, ""),
        (S.PAYMENT_FAILED, ""),
        (S.FAILED, S.APPROVED),
    ],
)
def test_order_that_is_not_approved_is_not_charged(status, failed_from):
    order = OrderFactory(status=status, failed_from=failed_from)

    charge(order)

    order.refresh_from_db()
    assert (order.status, order.version, order.events.count()) == (status, 1, 1)
    assert ledger(order) == []
    assert not Charge.objects.exists()


def test_missing_order_raises_order_not_found_and_charges_nothing():
    with pytest.raises(OrderNotFound):
        services.charge(order_id=uuid.uuid4(), message_id=uuid.uuid4())

    assert not FakeGatewayCharge.objects.exists()
    assert not Charge.objects.exists()


def test_the_amount_charged_is_the_orders_total_in_the_database():
    order = approved_order(quantity=1, unit_price_minor=1000, currency="EUR")
    # The order as stored now differs from the object this test holds (and from any message).
    Order.objects.filter(pk=order.pk).update(
        quantity=3, unit_price_minor=3333, total_minor=9999, currency="USD"
    )

    charge(order)

    [entry] = ledger(order)
    assert (entry.amount_minor, entry.currency) == (9999, "USD")
    row = Charge.objects.get(order=order)
    assert (row.amount_minor, row.currency) == (9999, "USD")


def test_a_key_the_gateway_refuses_is_raised_and_the_order_stays_approved():
    order = approved_order()
    FakeGatewayCharge.objects.create(
        idempotency_key=str(order.id),
        order_ref=str(order.id),
        amount_minor=100,
        currency="EUR",
        outcome=Outcome.CHARGED,
        reference="ch_someone_else",
    )

    with pytest.raises(GatewayRequestRejected):
        charge(order)

    order.refresh_from_db()
    assert (order.status, order.version) == (S.APPROVED, 1)
    assert Charge.objects.get(order=order).status == Charge.Status.PENDING


@pytest.mark.django_db(transaction=True)
def test_two_messages_charging_one_order_at_once_charge_it_once():
    for _ in range(5):
        order = approved_order()

        results = run_together(*[lambda order=order: charge(order)] * 2)

        assert not [r for r in results if isinstance(r, Exception)], results
        order.refresh_from_db()
        assert (order.status, order.version, order.events.count()) == (S.PROCESSED, 2, 2)
        [entry] = ledger(order)
        assert entry.outcome == Outcome.CHARGED
        row = Charge.objects.get(order=order)
        assert (row.status, row.gateway_reference) == (Charge.Status.SUCCEEDED, entry.reference)


def test_a_copy_refused_while_the_order_is_failed_does_not_shadow_its_replay():
    order = OrderFactory(status=S.FAILED, failed_from=S.APPROVED)
    message_id = uuid.uuid4()

    charge(order, message_id)  # a stray copy: the order is FAILED, nothing is charged
    order_services.resume_step(task_name=services.STEP, order_id=order.id, cause="replay")
    charge(order, message_id)  # the operator's replay of the same message

    order.refresh_from_db()
    assert order.status == S.PROCESSED
    assert len(ledger(order)) == 1
