"""What x-delivery-limit counts, on the real broker: returns from closed channels too.

A worker that restarts (or loses its connection) with a message prefetched or unacked hands
it back to the queue, and RabbitMQ 3.10 and 4.0 count that as a delivery, although no task
failed. These tests play such restarts with a bare consumer, no Celery worker, on a scratch
queue declared with the work queues' own arguments (messaging.topology.work_queue).
"""

import contextlib
import uuid

import amqp
import pytest
from django.conf import settings
from kombu import Connection

from messaging.topology import work_queue

from ..live.wait import wait_until

pytestmark = pytest.mark.broker

# Restarts a message must survive: a rolling deploy of many hosts, a broker restart, a few
# lost connections, all while it waits in some worker's prefetch.
RESTARTS_TO_SURVIVE = 20


@pytest.fixture
def broker():
    connection = Connection(settings.CELERY_BROKER_URL, connect_timeout=5)
    connection.ensure_connection(max_retries=3)
    yield connection
    connection.release()


@pytest.fixture
def scratch_queue(broker, request):
    """A work queue (its arguments from the settings, as declared for fraud and billing, or
    with the delivery limit a test passes as its param) whose dead letters go to a queue of
    its own, where a test can count them. Holds one message."""
    name = f"test-delivery-limit-{uuid.uuid4().hex[:8]}"
    dead = f"{name}-dead"
    channel = broker.channel()
    channel.exchange_declare(dead, "fanout", durable=True, auto_delete=False)
    channel.queue_declare(dead, durable=True, auto_delete=False)
    channel.queue_bind(dead, dead)
    arguments = work_queue(name).queue_arguments | {"x-dead-letter-exchange": dead}
    if hasattr(request, "param"):
        arguments["x-delivery-limit"] = request.param
    channel.queue_declare(name, durable=True, auto_delete=False, arguments=arguments)
    channel.basic_publish(amqp.Message(b'{"order_id": null}', delivery_mode=2), "", name)
    yield name, dead
    channel.queue_delete(name)
    channel.queue_delete(dead)
    channel.exchange_delete(dead)
    channel.close()


def deliver(broker, queue: str, *, ack: bool) -> amqp.Message | None:
    """Consume with a prefetch of 1, as a worker does, and take the message; then ack it, or
    close the channel without acking it: what a worker restart does to the message it holds."""
    channel = broker.channel()
    received = []
    channel.basic_qos(prefetch_size=0, prefetch_count=1, a_global=False)
    channel.basic_consume(queue, callback=received.append, no_ack=False)
    with contextlib.suppress(TimeoutError):  # nothing delivered: the caller sees None
        broker.drain_events(timeout=2)
    if ack and received:
        channel.basic_ack(received[0].delivery_tag)
    channel.close()
    return received[0] if received else None


def depth(broker, queue: str) -> int:
    channel = broker.channel()
    try:
        return channel.queue_declare(queue, passive=True).message_count
    finally:
        channel.close()


def test_a_message_rides_out_twenty_restarts_under_the_default_limit(broker, scratch_queue):
    queue, dead = scratch_queue

    for restart in range(RESTARTS_TO_SURVIVE):
        assert deliver(broker, queue, ack=False) is not None, f"lost after {restart} restarts"

    assert deliver(broker, queue, ack=True) is not None  # still there for the next worker
    assert depth(broker, dead) == 0


@pytest.mark.parametrize("scratch_queue", [2], indirect=True)
def test_returns_from_closed_channels_count_toward_the_limit(broker, scratch_queue):
    # The other side: with a limit of 2, the third return dead-letters a message that never
    # failed a task. So the limit must leave room for restarts.
    queue, dead = scratch_queue
    for _ in range(3):
        assert deliver(broker, queue, ack=False) is not None

    wait_until(lambda: depth(broker, dead) == 1, timeout=5, what="the dead letter")
    assert deliver(broker, queue, ack=True) is None
