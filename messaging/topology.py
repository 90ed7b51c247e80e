"""The RabbitMQ topology: durable quorum work queues on topic exchanges, and the dead letters.

Declared by the worker at start, by `manage.py setup_broker` (release phase) and by each
publishing process before its first publish; every declaration is idempotent.
Topic exchanges, not direct: Celery's native delayed delivery (how countdowns and retries
wait on quorum queues) silently drops messages routed through a direct exchange.
"""

from django.conf import settings
from kombu import Connection, Exchange, Queue

WORK_QUEUES = ("fraud", "billing")
DEAD_LETTER_EXCHANGE = "dead_letter"
DEAD_LETTER_QUEUE = "dead_letter"

dead_letter_exchange = Exchange(DEAD_LETTER_EXCHANGE, type="topic", durable=True)


def dead_letter_queue() -> Queue:
    return Queue(
        DEAD_LETTER_QUEUE,
        exchange=dead_letter_exchange,
        routing_key="#",
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},
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
    """Declare the dead-letter exchange and queue first, then the work queues."""
    channel = connection.default_channel
    dead_letter_queue().bind(channel).declare()
    for queue in work_queues():
        queue.bind(channel).declare()
