"""fraud.services.screen() called directly, as the fraud.screen_order task would call it."""

import time
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest

from fraud import services
from fraud.models import FraudAssessment
from messaging.models import OutboxMessage, ProcessedMessage
from ordering import services as order_services
from ordering.errors import OrderNotFound
from ordering.models import Order
from ordering.state_machine import OrderStatus

from ..factories import BlockedBuyerFactory, OrderFactory, UserFactory
from ..ordering.test_concurrency import run_together

pytestmark = pytest.mark.django_db
S = OrderStatus
Verdict = FraudAssessment.Verdict


def screen(order: Order, message_id: uuid.UUID | None = None) -> uuid.UUID:
    message_id = message_id or uuid.uuid4()
    services.screen(order_id=order.id, message_id=message_id)
    return message_id


def billing_messages() -> list[OutboxMessage]:
    return list(OutboxMessage.objects.filter(task_name="billing.charge_order"))


def snapshot(order: Order) -> tuple:
    """What a second screening must leave alone."""
    order.refresh_from_db()
    return (
        order.status,
        order.version,
        list(order.events.values_list("version", "to_status", "message_id")),
        list(FraudAssessment.objects.values_list("order_id", "verdict", "message_id")),
        OutboxMessage.objects.count(),
    )


def test_ordinary_order_is_approved_with_an_assessment_and_one_billing_message():
    order = OrderFactory()

    message_id = screen(order)

    order.refresh_from_db()
    assert (order.status, order.version) == (S.APPROVED, 2)
    assessment = FraudAssessment.objects.get(order=order)
    assert (assessment.verdict, assessment.score, assessment.reasons) == (Verdict.APPROVED, 0, [])
    assert assessment.message_id == message_id
    [billing] = billing_messages()
    assert billing.kwargs == {"order_id": str(order.id)}
    assert billing.published_at is None  # published only once the transaction commits


def test_the_history_event_carries_the_message_id():
    order = OrderFactory()

    message_id = screen(order)

    event = order.events.get(version=2)
    assert (event.from_status, event.to_status, event.message_id) == (
        S.PENDING,
        S.APPROVED,
        message_id,
    )
    assert event.cause == "fraud screening: passed"


def test_order_above_the_maximum_amount_is_canceled_for_fraud_without_billing(settings):
    settings.FRAUD_MAX_ORDER_AMOUNT = Decimal("30")
    order = OrderFactory(quantity=2, unit_price_minor=1999)

    message_id = screen(order)

    order.refresh_from_db()
    assert (order.status, order.version) == (S.CANCELED_FRAUD, 2)
    assessment = FraudAssessment.objects.get(order=order)
    assert (assessment.verdict, assessment.score) == (Verdict.REJECTED, 100)
    assert assessment.reasons == [
        {"rule": "total_above_limit", "detail": "total 39.98 EUR is above 30"}
    ]
    event = order.events.get(version=2)
    assert (event.to_status, event.cause, event.message_id) == (
        S.CANCELED_FRAUD,
        "fraud screening: total_above_limit",
        message_id,
    )
    assert billing_messages() == []


def test_order_of_exactly_the_maximum_amount_is_approved(settings):
    settings.FRAUD_MAX_ORDER_AMOUNT = Decimal("39.98")
    order = OrderFactory(quantity=2, unit_price_minor=1999)

    screen(order)

    order.refresh_from_db()
    assert order.status == S.APPROVED


def test_order_of_a_blocked_buyer_is_canceled_for_fraud():
    block = BlockedBuyerFactory(reason="chargebacks")
    order = OrderFactory(buyer=block.buyer)

    screen(order)

    order.refresh_from_db()
    assert order.status == S.CANCELED_FRAUD
    assert FraudAssessment.objects.get(order=order).reasons == [
        {"rule": "buyer_blocked", "detail": "buyer is blocked: chargebacks"}
    ]
    assert billing_messages() == []


def test_the_order_one_over_the_hourly_limit_is_canceled_for_fraud(settings):
    settings.FRAUD_MAX_ORDERS_PER_HOUR = 3
    buyer = UserFactory()
    *_earlier, at_limit, over_limit = [OrderFactory(buyer=buyer) for _ in range(4)]

    screen(at_limit)
    screen(over_limit)

    at_limit.refresh_from_db()
    over_limit.refresh_from_db()
    assert at_limit.status == S.APPROVED
    assert over_limit.status == S.CANCELED_FRAUD
    assert [r["rule"] for r in FraudAssessment.objects.get(order=over_limit).reasons] == [
        "too_many_orders_in_an_hour"
    ]
    assert [m.kwargs["order_id"] for m in billing_messages()] == [str(at_limit.id)]


def test_orders_older_than_an_hour_do_not_count_toward_the_hourly_limit(settings):
    settings.FRAUD_MAX_ORDERS_PER_HOUR = 3
    buyer = UserFactory()
    *earlier, order = [OrderFactory(buyer=buyer) for _ in range(4)]
    Order.objects.filter(pk__in=[o.pk for o in earlier]).update(
        created_at=order.created_at - timedelta(minutes=61)
    )

    screen(order)

    order.refresh_from_db()
    assert order.status == S.APPROVED


def test_duplicate_message_is_applied_once():
    order = OrderFactory()
    message_id = screen(order)
    before = snapshot(order)

    screen(order, message_id)

    assert snapshot(order) == before
    assert before[:2] == (S.APPROVED, 2)
    assert ProcessedMessage.objects.filter(message_id=message_id).count() == 1


def test_another_message_for_an_already_screened_order_changes_nothing(settings):
    order = OrderFactory()
    first = screen(order)
    before = snapshot(order)
    # Even a verdict that would now be different is not applied: the order is not PENDING.
    settings.FRAUD_MAX_ORDER_AMOUNT = Decimal("1")

    screen(order)

    assert snapshot(order) == before
    assert FraudAssessment.objects.get(order=order).message_id == first


def test_order_canceled_before_screening_stays_canceled_without_assessment_or_billing():
    order = OrderFactory(status=S.CANCELED)

    screen(order)

    order.refresh_from_db()
    assert (order.status, order.version, order.events.count()) == (S.CANCELED, 1, 1)
    assert not FraudAssessment.objects.exists()
    assert not OutboxMessage.objects.exists()


def test_missing_order_raises_order_not_found_and_applies_nothing():
    message_id = uuid.uuid4()

    with pytest.raises(OrderNotFound):
        services.screen(order_id=uuid.uuid4(), message_id=message_id)

    assert not ProcessedMessage.objects.filter(message_id=message_id).exists()
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_messages_screening_one_order_at_once_approve_it_once(published, settings):
    settings.OUTBOX_PUBLISH_ON_COMMIT = True  # as in production; `published` records it
    for _ in range(5):
        order = OrderFactory()

        results = run_together(*[lambda order=order: screen(order)] * 2)

        assert not [r for r in results if isinstance(r, Exception)], results
        order.refresh_from_db()
        assert (order.status, order.version, order.events.count()) == (S.APPROVED, 2, 2)
        assert FraudAssessment.objects.filter(order=order).count() == 1
        assert [m.kwargs for m in billing_messages() if m.kwargs["order_id"] == str(order.id)] == [
            {"order_id": str(order.id)}
        ]
    # Committed for real here, so each billing message was published after commit, once.
    assert sorted(m["message_id"] for m in published) == sorted(m.id for m in billing_messages())


@pytest.mark.django_db(transaction=True)
def test_one_message_delivered_twice_at_once_is_applied_once(monkeypatch):
    original = order_services.claim_message

    def slow_claim(**kwargs) -> bool:
        claimed = original(**kwargs)
        time.sleep(0.02)  # hold the claim open so the other delivery runs into it
        return claimed

    monkeypatch.setattr(order_services, "claim_message", slow_claim)
    order = OrderFactory()
    message_id = uuid.uuid4()

    results = run_together(*[lambda: screen(order, message_id)] * 2)

    assert not [r for r in results if isinstance(r, Exception)], results
    order.refresh_from_db()
    assert (order.status, order.version) == (S.APPROVED, 2)
    assert ProcessedMessage.objects.filter(message_id=message_id).count() == 1
    assert len(billing_messages()) == 1


def test_a_copy_refused_while_the_order_is_failed_does_not_shadow_its_replay():
    order = OrderFactory(status=S.FAILED, failed_from=S.PENDING)
    message_id = uuid.uuid4()

    screen(order, message_id)  # a stray copy: refused, the order is FAILED
    order_services.resume_step(task_name=services.STEP, order_id=order.id, cause="replay")
    screen(order, message_id)  # the operator's replay of the same message

    order.refresh_from_db()
    assert order.status == S.APPROVED
    assert ProcessedMessage.objects.filter(message_id=message_id).count() == 1
