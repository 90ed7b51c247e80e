"""Every message the outbox sends is persistent, replays included, on the real RabbitMQ.

A transient message in a durable queue is lost when the broker restarts: an order whose
step message (or replay) it was would have no way forward. No worker consumes these
queues in the unit tests, so the message is read back off its queue as the broker keeps it.
"""

import uuid

import pytest
from django.conf import settings
from django.db import transaction
from kombu import Connection

from messaging import broker as broker_module
from messaging import deadletters, outbox
from messaging.models import OutboxMessage
from messaging.topology import declare_topology
from ordering.state_machine import OrderStatus

from ..factories import DeadLetterFactory, OrderFactory

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]

PERSISTENT = 2  # AMQP delivery mode


@pytest.fixture
def real_broker(monkeypatch):
    """The outbox publishes to RabbitMQ itself, not to the suite's recording fake."""
    monkeypatch.setattr(outbox, "send_message", broker_module.send_message)
    monkeypatch.setattr(outbox, "send_messages", broker_module.send_messages)


@pytest.fixture(params=["after-commit", "relay"])
def publish(request, real_broker, settings):
    """Each way a committed outbox row reaches the broker; returns 'publish what is left'."""
    settings.OUTBOX_PUBLISH_ON_COMMIT = request.param == "after-commit"

    def publish_left(message_id: uuid.UUID) -> None:
        if request.param == "relay":
            assert outbox.publish_pending(ids=[message_id]) == 1
        assert OutboxMessage.objects.get(pk=message_id).published_at is not None

    return publish_left


def take_from_queue(queue: str, message_id: uuid.UUID):
    """Take the message with this task id off the queue; others ahead of it go back."""
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=5) as connection:
        declare_topology(connection)
        channel = connection.default_channel
        others = []
        try:
            while (message := channel.basic_get(queue=queue)) is not None:
                if message.headers.get("id") == str(message_id):
                    channel.basic_ack(message.delivery_tag)
                    return message
                others.append(message)
        finally:
            for other in others:
                channel.basic_reject(other.delivery_tag, requeue=True)
    raise AssertionError(f"no message {message_id} in {queue}")


def test_a_replayed_message_is_published_persistent(publish):
    order = OrderFactory(status=OrderStatus.FAILED, failed_from=OrderStatus.PENDING)
    dead_letter = DeadLetterFactory(subject_id=order.id)
    message_id = uuid.UUID(dead_letter.message_id)

    deadletters.replay(dead_letter_id=dead_letter.pk, actor=None)
    publish(message_id)

    message = take_from_queue("fraud", message_id)
    assert message.properties["delivery_mode"] == PERSISTENT
    assert message.headers["task"] == "fraud.screen_order"


def test_a_step_message_is_published_persistent(publish):
    order = OrderFactory()
    with transaction.atomic():
        written = outbox.enqueue(
            task_name="billing.charge_order", kwargs={"order_id": str(order.id)}
        )
    publish(written.id)

    message = take_from_queue("billing", written.id)
    assert message.properties["delivery_mode"] == PERSISTENT
