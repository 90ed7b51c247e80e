"""Each process's role can do its process's job: the services it runs, run as that role.

Django's own connection logs in as the role for the job (`connected_as`); what the job
needs beforehand is written, and what it did is read, as the owner.
"""

import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_results.models import TaskResult
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from billing import services as billing
from chaos.receiver import Receiver
from config.celery import app
from fakegateway.models import FakeGatewayCharge
from fraud import services as fraud
from messaging import deadletters, outbox, retention
from messaging.broker import Confirms
from messaging.models import DeadLetter, OutboxMessage
from ordering import services as ordering
from ordering.models import Order
from ordering.state_machine import OrderStatus
from webhooks import services as webhooks
from webhooks.models import WebhookDelivery, WebhookEndpoint

from ..factories import DeadLetterFactory, OrderFactory, UserFactory
from ..messaging.test_deadletters import celery_message
from .conftest import connected_as

pytestmark = pytest.mark.django_db(transaction=True)
S = OrderStatus


@pytest.fixture(autouse=True)
def _loopback_targets(settings) -> None:
    settings.WEBHOOK_ALLOW_LOOPBACK = True
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    settings.WEBHOOK_DEADLINE_SECONDS = 2


@pytest.fixture
def receiver():
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


def subscribed_buyer(receiver):
    """A buyer with a webhook endpoint for every status, so status changes write deliveries."""
    buyer = UserFactory()
    events = [f"order.{status.lower()}" for status in S.values]
    webhooks.create_endpoint(owner=buyer, url=receiver.url, event_types=events)
    return buyer


def test_the_web_role_takes_orders_cancels_them_and_signs_staff_in(process_logins, receiver):
    buyer = subscribed_buyer(receiver)
    token = Token.objects.create(user=buyer)
    staff = UserFactory(is_staff=True, is_superuser=True)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    admin = APIClient()

    with connected_as(process_logins["web"]):
        created = api.post(
            "/api/orders/",
            {"product_name": "kettle", "quantity": 1, "unit_price": "25.00"},
            format="json",
        )
        canceled = api.post(f"/api/orders/{created.json()['id']}/cancel/")
        endpoint = api.post(
            "/api/webhooks/endpoints/",
            {"url": receiver.url, "event_types": ["order.processed"]},
            format="json",
        )
        wrong = admin.post(
            "/admin/login/", {"username": staff.username, "password": "wrong"}, follow=False
        )
        signed_in = admin.post(
            "/admin/login/",
            {"username": staff.username, "password": "correct horse battery staple"},
        )
        dashboard = admin.get("/admin/dashboard/")

    assert (created.status_code, canceled.status_code) == (201, 200), created.content
    assert endpoint.status_code == 201, endpoint.content
    assert (wrong.status_code, signed_in.status_code, dashboard.status_code) == (200, 302, 200)
    order = Order.objects.get(pk=created.json()["id"])
    assert order.status == S.CANCELED
    assert WebhookDelivery.objects.get(subject_id=order.id).event_type == "order.canceled"


def test_the_web_role_replays_a_dead_letter_for_staff(process_logins):
    letter = DeadLetterFactory()
    staff = UserFactory(is_staff=True)

    with connected_as(process_logins["web"]):
        deadletters.replay(dead_letter_id=letter.pk, actor=staff)

    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.REPLAYED
    assert OutboxMessage.objects.filter(id=letter.message_id, published_at=None).exists()


def test_the_worker_role_screens_charges_and_prunes(process_logins, receiver):
    order = OrderFactory(buyer=subscribed_buyer(receiver))
    old = timezone.now() - timedelta(days=30)
    OutboxMessage.objects.create(task_name="fraud.screen_order", kwargs={}, published_at=old)

    with connected_as(process_logins["worker"]):
        fraud.screen(order_id=order.id, message_id=uuid.uuid4())
        billing.charge(order_id=order.id, message_id=uuid.uuid4())
        pruned = retention.prune(older_than=timedelta(days=7))
        webhooks.prune_deliveries(older_than=timedelta(days=7))

    order.refresh_from_db()
    assert order.status == S.PROCESSED
    assert order.charge.status == "SUCCEEDED"
    assert FakeGatewayCharge.objects.get(order_ref=str(order.id)).outcome == "CHARGED"
    assert WebhookDelivery.objects.filter(subject_id=order.id).count() == 2  # approved, processed
    assert pruned["published outbox messages"] == 1


def test_the_worker_role_stores_task_results(process_logins):
    with connected_as(process_logins["worker"]):
        app.backend.store_result("a-task", None, "RETRY")
        app.backend.store_result("a-task", {"ok": True}, "SUCCESS")

    assert TaskResult.objects.get(task_id="a-task").status == "SUCCESS"


def test_the_webhooks_role_delivers(process_logins, receiver):
    order = OrderFactory(buyer=subscribed_buyer(receiver))
    ordering.transition(order_id=order.id, to=S.APPROVED, cause="test")
    delivery = WebhookDelivery.objects.get(subject_id=order.id)

    with connected_as(process_logins["webhooks"]):
        webhooks.deliver(delivery_id=delivery.id)

    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.DELIVERED


def test_the_relay_role_marks_what_the_broker_confirmed(process_logins):
    message = OutboxMessage.objects.create(task_name="fraud.screen_order", kwargs={})

    class ConfirmingEverything:
        def send(self, batch):
            return Confirms(confirmed={row["message_id"] for row in batch})

    with connected_as(process_logins["relay"]):
        sent = outbox.publish_pending(publisher=ConfirmingEverything())

    message.refresh_from_db()
    assert (sent, message.published_at is not None) == (1, True)


def test_the_deadletters_role_records_dead_letters_and_fails_what_they_name(
    process_logins, receiver
):
    buyer = subscribed_buyer(receiver)
    order, approved = OrderFactory(buyer=buyer), OrderFactory(buyer=buyer)
    ordering.transition(order_id=approved.id, to=S.APPROVED, cause="test")
    delivery = WebhookDelivery.objects.get(subject_id=approved.id)
    webhook_death = celery_message(task="webhooks.deliver", queue="webhooks")
    webhook_death["body"] = json.dumps([[], {"delivery_id": str(delivery.id)}, {}]).encode()

    with connected_as(process_logins["deadletters"]):
        step = deadletters.record(deadletters.read_death(**celery_message(order_id=order.id)))
        webhook = deadletters.record(deadletters.read_death(**webhook_death))

    order.refresh_from_db()
    delivery.refresh_from_db()
    assert (step.status, webhook.status) == (DeadLetter.Status.NEW, DeadLetter.Status.NEW)
    assert order.status == S.FAILED
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert WebhookEndpoint.objects.get(owner=order.buyer).consecutive_failures == 1
    assert WebhookDelivery.objects.filter(subject_id=order.id, event_type="order.failed").exists()
