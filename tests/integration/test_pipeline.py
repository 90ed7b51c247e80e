"""Orders through the real system: HTTP API -> outbox -> RabbitMQ -> celery worker -> terminal.

Each test asserts what a user would see, and (in the `system` fixture) that no message is
left in the work queues afterwards.
"""

import time
import uuid

import pytest
from rest_framework.authtoken.models import Token

from billing.models import Charge
from chaos.broker import wait_for_empty_work_queues
from fakegateway.models import FakeGatewayCharge, FakeGatewayFault
from fraud.models import BlockedBuyer, FraudAssessment
from messaging.broker import send_message
from messaging.models import OutboxMessage, ProcessedMessage
from ordering.models import Order
from ordering.state_machine import TERMINAL_STATUSES

from ..live.wait import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]

NORMAL = {"product_name": "Teapot", "quantity": 2, "unit_price": "25.00"}


def post_order(api, **overrides) -> uuid.UUID:
    response = api.post("/api/orders/", NORMAL | overrides)
    assert response.status == 201, response.body
    return uuid.UUID(response.body["id"])


def wait_for_terminal(order_id: uuid.UUID, timeout: float = 30) -> Order:
    return wait_until(
        lambda: Order.objects.filter(pk=order_id, status__in=TERMINAL_STATUSES).first(),
        timeout=timeout,
        what=f"order {order_id} to finish",
    )


def history(order_id: uuid.UUID) -> list[tuple[str, str]]:
    order = Order.objects.get(pk=order_id)
    return list(order.events.order_by("version").values_list("from_status", "to_status"))


def charges_at_gateway(order_id: uuid.UUID) -> int:
    return FakeGatewayCharge.objects.filter(
        order_ref=str(order_id), outcome=FakeGatewayCharge.Outcome.CHARGED
    ).count()


def test_a_normal_order_ends_processed_with_one_charge(buyer_api):
    order_id = post_order(buyer_api)

    order = wait_for_terminal(order_id)

    assert order.status == "PROCESSED"
    assert history(order_id) == [
        ("", "PENDING"),
        ("PENDING", "APPROVED"),
        ("APPROVED", "PROCESSED"),
    ]
    assert charges_at_gateway(order_id) == 1
    charge = Charge.objects.get(order_id=order_id)
    assert (charge.status, charge.amount_minor, order.total_minor) == ("SUCCEEDED", 5000, 5000)
    assert FraudAssessment.objects.get(order_id=order_id).verdict == "APPROVED"
    assert buyer_api.get(f"/api/orders/{order_id}/").body["status"] == "PROCESSED"


def test_an_order_above_the_fraud_limit_is_canceled_for_fraud(buyer_api):
    order_id = post_order(buyer_api, quantity=2, unit_price="10000.00")  # total 20000

    order = wait_for_terminal(order_id)

    assert order.status == "CANCELED_FRAUD"
    assessment = FraudAssessment.objects.get(order_id=order_id)
    assert [reason["rule"] for reason in assessment.reasons] == ["total_above_limit"]
    assert not Charge.objects.filter(order_id=order_id).exists()
    assert charges_at_gateway(order_id) == 0


def test_a_declined_card_ends_payment_failed_without_retry(buyer_api):
    order_id = post_order(buyer_api, quantity=1, unit_price="7000.00")

    order = wait_for_terminal(order_id)

    assert order.status == "PAYMENT_FAILED"
    assert Charge.objects.get(order_id=order_id).status == "DECLINED"
    assert charges_at_gateway(order_id) == 0
    ledger = FakeGatewayCharge.objects.get(order_ref=str(order_id))
    assert (ledger.outcome, ledger.requests) == ("DECLINED", 1)


def test_a_blocked_buyer_is_canceled_for_fraud(buyer_api):
    buyer = Token.objects.get(key=buyer_api.token).user
    BlockedBuyer.objects.create(buyer=buyer, reason="chargebacks")

    order = wait_for_terminal(post_order(buyer_api))

    assert order.status == "CANCELED_FRAUD"
    assert "chargebacks" in FraudAssessment.objects.get(order=order).reasons[0]["detail"]


def test_the_21st_order_in_an_hour_is_canceled_for_fraud(buyer_api):
    order_ids = [post_order(buyer_api, product_name=f"Cup {n}") for n in range(21)]

    statuses = [wait_for_terminal(order_id).status for order_id in order_ids]

    assert statuses == ["PROCESSED"] * 20 + ["CANCELED_FRAUD"]


def test_a_cancel_while_pending_wins_over_screening(system, buyer_api):
    system.proxy.cut()  # screening cannot start until the broker is back
    order_id = post_order(buyer_api)

    canceled = buyer_api.post(f"/api/orders/{order_id}/cancel/")
    system.proxy.restore()

    assert canceled.status == 200
    system.wait_until_idle()  # the screening message was published and consumed
    assert Order.objects.get(pk=order_id).status == "CANCELED"
    assert history(order_id) == [("", "PENDING"), ("PENDING", "CANCELED")]
    assert not Charge.objects.filter(order_id=order_id).exists()


def test_every_message_published_twice_charges_once_with_one_history_row_per_step(
    system, buyer_api
):
    order_id = post_order(buyer_api)
    screen = OutboxMessage.objects.get(
        task_name="fraud.screen_order", kwargs__order_id=str(order_id)
    )
    republish(screen)
    bill = wait_until(
        lambda: OutboxMessage.objects.filter(task_name="billing.charge_order").first(),
        what="the billing message",
    )
    republish(bill)

    order = wait_for_terminal(order_id)
    wait_until(lambda: ProcessedMessage.objects.count() == 2)

    assert order.status == "PROCESSED"
    assert history(order_id) == [
        ("", "PENDING"),
        ("PENDING", "APPROVED"),
        ("APPROVED", "PROCESSED"),
    ]
    assert charges_at_gateway(order_id) == 1
    # Late copies, after the order finished, change nothing either.
    republish(screen)
    republish(bill)
    wait_for_empty_work_queues(system.broker_url)
    time.sleep(0.5)  # the last copy may still be in a worker's hands
    assert Order.objects.get(pk=order_id).version == order.version
    assert charges_at_gateway(order_id) == 1


def test_orders_posted_while_the_broker_is_down_are_accepted_and_complete_after(system, buyer_api):
    system.proxy.cut()

    order_ids = [post_order(buyer_api, product_name=f"Kettle {n}") for n in range(5)]

    assert set(Order.objects.filter(pk__in=order_ids).values_list("status", flat=True)) == {
        "PENDING"
    }
    assert OutboxMessage.objects.filter(published_at__isnull=True).count() == 5
    system.proxy.restore()
    assert [wait_for_terminal(order_id).status for order_id in order_ids] == ["PROCESSED"] * 5
    assert sum(charges_at_gateway(order_id) for order_id in order_ids) == 5


@pytest.mark.parametrize("after_charge", [False, True], ids=["before-charging", "answer-lost"])
def test_a_gateway_timeout_is_retried_and_charges_once(buyer_api, after_charge):
    FakeGatewayFault.objects.create(remaining=1, after_charge=after_charge)

    order = wait_for_terminal(post_order(buyer_api))

    assert order.status == "PROCESSED"
    assert charges_at_gateway(order.id) == 1
    assert Charge.objects.get(order=order).attempts == 2
    ledger = FakeGatewayCharge.objects.get(order_ref=str(order.id))
    assert ledger.requests == (2 if after_charge else 1)


def republish(message: OutboxMessage) -> None:
    """Publish an outbox message again, same id: what a redelivery or a duplicate looks like."""
    send_message(
        task_name=message.task_name,
        message_id=message.id,
        kwargs=message.kwargs,
        headers=message.headers,
    )
