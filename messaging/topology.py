"""The RabbitMQ topology: durable quorum work queues on topic exchanges, and the dead letters.

Declared by `manage.py setup_broker` (the release phase), with Celery's native delayed
delivery exchanges and queues. The worker at start and each publishing process before its
first publish declare it too (idempotent) when BROKER_DECLARES_TOPOLOGY is on, as with one
all-powerful broker user; with a user per role it is off, and they only check, with passive
declares (which need no permission), that the release declared it.
Topic exchanges, not direct: Celery's native delayed delivery (how countdowns and retries
wait on quorum queues) silently drops messages routed through a direct exchange.
"""

from django.conf import settings
from kombu import Connection, Exchange, Queue
from kombu.transport.native_delayed_delivery import (
    bind_queue_to_native_delayed_delivery_exchange,
    declare_native_delayed_delivery_exchanges_and_queues,
)

STEP_QUEUES = ("fraud", "billing")  # the order pipeline's steps (ordering/steps.py)
MAINTENANCE_QUEUE = "maintenance"  # housekeeping sent by Celery beat (messaging/tasks.py)
# Webhook deliveries (webhooks/tasks.py), with a worker of their own: a slow receiver must
# never hold up a step of the pipeline.
WEBHOOK_QUEUE = "webhooks"
WORK_QUEUES = (*STEP_QUEUES, MAINTENANCE_QUEUE, WEBHOOK_QUEUE)
# The outbox's lanes, each published by a relay of its own (`relay_outbox --lane`). Webhook
# deliveries have theirs: however many wait (a fan-out to many endpoints, a relay down),
# the pipeline's messages never queue behind them, and publishing them costs the pipeline's
# relay nothing. Every other task is in the main lane.
MAIN_LANE = "main"
OWN_LANE_QUEUES = (WEBHOOK_QUEUE,)
LANES = (MAIN_LANE, *OWN_LANE_QUEUES)
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


def queue_of(task_name: str) -> str:
    """The queue a task is routed to: its name's first part (config/celery.py's routes)."""
    return task_name.split(".", 1)[0]


def lane_of(task_name: str) -> str:
    """The outbox lane of a task's messages."""
    queue = queue_of(task_name)
    return queue if queue in OWN_LANE_QUEUES else MAIN_LANE


def work_queue(name: str, *, declare: bool = True) -> Queue:
    """A work queue whose messages end in `dead_letter` when rejected or delivered too often.

    `declare=False`: kombu and Celery never declare it (neither when consuming nor before a
    publish), for a broker user without the configure permission.
    """
    return Queue(
        name,
        exchange=Exchange(name, type="topic", durable=True, no_declare=not declare),
        routing_key=name,
        durable=True,
        no_declare=not declare,
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


def work_queues(*, declare: bool = True) -> list[Queue]:
    return [work_queue(name, declare=declare) for name in WORK_QUEUES]


def declare_topology(connection: Connection, *, passive: bool | None = None) -> None:
    """Declare the parking queue, then the dead-letter exchange and queue, then the work queues.

    Each before the queues that dead-letter into it: a dead-letter exchange that does not
    exist drops what is sent to it. `passive` (default: BROKER_DECLARES_TOPOLOGY off) only
    checks that each queue exists, raising amqp's NotFound if one does not.
    """
    if passive is None:
        passive = not settings.BROKER_DECLARES_TOPOLOGY
    if passive:
        return check_topology(connection)
    channel = connection.default_channel
    parking_queue().bind(channel).declare()
    dead_letter_queue().bind(channel).declare()
    for queue in work_queues():
        queue.bind(channel).declare()


def check_topology(connection: Connection) -> None:
    """Passive declares of every queue: they create nothing and need no permission."""
    channel = connection.channel()  # the broker closes it if a queue is missing
    for name in (PARKING_QUEUE, DEAD_LETTER_QUEUE, *WORK_QUEUES):
        channel.queue_declare(queue=name, passive=True)
    channel.close()


def declare_delayed_delivery(connection: Connection) -> None:
    """Celery's native delayed delivery, as its worker declares it at start: the exchanges and
    quorum queues `celery_delayed_0` to `celery_delayed_27` that a retry's countdown waits in,
    the `celery_delayed_delivery` exchange they end in, and its binding to each work queue.

    For the release phase: a worker without the configure permission cannot declare them.
    Only on RabbitMQ (AMQP), as Celery's worker does: the filesystem broker of development has
    no exchange bindings, and no delayed delivery to prepare.
    """
    if connection.transport.driver_type != "amqp":
        return
    declare_native_delayed_delivery_exchanges_and_queues(
        connection, settings.CELERY_BROKER_NATIVE_DELAYED_DELIVERY_QUEUE_TYPE
    )
    for queue in work_queues():
        bind_queue_to_native_delayed_delivery_exchange(connection, queue)
