"""The RabbitMQ topology: durable quorum work queues on topic exchanges, and the dead letters.

Declared by the worker at start, by `manage.py setup_broker` (release phase) and by each
publishing process before its first publish; every declaration is idempotent.
Topic exchanges, not direct: Celery's native delayed delivery (how countdowns and retries
wait on quorum queues) silently drops messages routed through a direct exchange.
"""

from django.conf import settings
from kombu import Connection, Exchange, Queue

STEP_QUEUES = ("fraud", "billing")  # the order pipeline's steps (ordering/steps.py)
MAINTENANCE_QUEUE = "maintenance"  # housekeeping sent by Celery beat (messaging/tasks.py)
# Webhook deliveries (webhooks/tasks.py), with a worker of their own: a slow receiver must
# never hold up a step of the pipeline.
WEBHOOK_QUEUE = "webhooks"
WORK_QUEUES = (*STEP_QUEUES, MAINTENANCE_QUEUE, WEBHOOK_QUEUE)
DEAD_LETTER_EXCHANGE = "dead_letter"
DEAD_LETTER_QUEUE = "dead_letter"
PARKING_EXCHANGE = "dead_letter_parked"
PARKING_QUEUE = "dead_letter_parked"

dead_letter_exchange = Exchange(DEAD_LETTER_EXCHANGE, type="topic", durable=True)
parking_exchange = Exchange(PARKING_EXCHANGE, type="fanout", durable=True)


def dead_letter_queue() -> Queue:
    """Where work queues dead-letter to; what it cannot deliver goes on to the parking queue.

    Its delivery limit is explicit: RabbitMQ 4 gives quorum queues a default of 20 and drops
    past it; here a message delivered that often (a consumer that crashes on it) is
    dead-lettered, at least once, into `dead_letter_parked` instead.
    """
    return Queue(
        DEAD_LETTER_QUEUE,
        exchange=dead_letter_exchange,
        routing_key="#",
        durable=True,
        queue_arguments={
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": PARKING_EXCHANGE,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",  # at-least-once dead-lettering requires it
            "x-delivery-limit": settings.DEAD_LETTER_DELIVERY_LIMIT,
        },
    )


def parking_queue() -> Queue:
    """Dead letters that could not be recorded, kept until an operator unparks them.

    A classic durable queue, on purpose: classic queues have no delivery limit on any
    RabbitMQ version (a quorum queue gets one of 20 by default on RabbitMQ 4 and drops past
    it, and the ways to lift it differ between 3.10 and 4.x), and with no TTL, length limit
    or dead-letter exchange of its own nothing in it is ever dropped. `x-queue-type` is
    explicit so that a vhost's default queue type cannot make it a quorum queue. Its
    messages are persistent, so they survive a restart; it is not replicated across a
    cluster's nodes (it should hold next to nothing, and only until an operator unparks).
    """
    return Queue(
        PARKING_QUEUE,
        exchange=parking_exchange,
        routing_key="",
        durable=True,
        queue_arguments={"x-queue-type": "classic"},
    )


def work_queue(name: str) -> Queue:
    """A work queue whose messages end in `dead_letter` when rejected or delivered too often."""
    return Queue(
        name,
        exchange=Exchange(name, type="topic", durable=True),
        routing_key=name,
        durable=True,
        queue_arguments={
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": name,
            # At-least-once dead-lettering (RabbitMQ 3.10+): a dead letter is kept until
            # `dead_letter` confirms it, instead of being dropped if that fails.
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
            "x-delivery-limit": settings.BROKER_DELIVERY_LIMIT,
        },
    )


def work_queues() -> list[Queue]:
    return [work_queue(name) for name in WORK_QUEUES]


def declare_topology(connection: Connection) -> None:
    """Declare the parking queue, then the dead-letter exchange and queue, then the work queues.

    Each before the queues that dead-letter into it: a dead-letter exchange that does not
    exist drops what is sent to it.
    """
    channel = connection.default_channel
    parking_queue().bind(channel).declare()
    dead_letter_queue().bind(channel).declare()
    for queue in work_queues():
        queue.bind(channel).declare()
