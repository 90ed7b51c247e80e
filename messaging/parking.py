"""The parking queue: dead letters that could not be recorded, kept until an operator acts.

A dead letter ends here when the dead-letter consumer gave up recording it (the database down
for longer than its retries), or when RabbitMQ moved it out of `dead_letter` past that
queue's delivery limit (a consumer that crashed on every delivery). It is kept exactly as it
was (body, properties, headers); `python manage.py deadletters unpark` moves it back to
`dead_letter`, where the consumer records it as if it had just arrived.

Every move publishes with a publisher confirm, bounded by a timeout, and only then acks the
original: a move that fails leaves the message where it was, and one that is repeated (the
mover died between confirm and ack) is told apart by the consumer (see deadletters.death_mark).
"""

import logging

from amqp import Message
from amqp.exceptions import MessageNacked, PreconditionFailed
from django.conf import settings

from core.errors import ApplicationError

from .broker import BROKER_ERRORS
from .topology import (
    DEAD_LETTER_EXCHANGE,
    DEAD_LETTER_QUEUE,
    PARKING_QUEUE,
    dead_letter_queue,
    parking_queue,
)

logger = logging.getLogger(__name__)


class DeadLetterQueueInUse(ApplicationError):
    """The old dead-letter queue still has consumers; replacing it could lose a message."""


# Properties not carried over: a per-message TTL would let the parking queue drop the message
# (RabbitMQ removes it when it dead-letters, but a foreign publisher may set one), and the
# broker refuses a `user_id` that is not the publishing connection's own user.
DROPPED_PROPERTIES = ("expiration", "user_id", "application_headers")

# What a move can raise: the broker gone, refusing the message (nack) or not confirming in time.
MOVE_ERRORS = (*BROKER_ERRORS, MessageNacked)


def republish(channel, *, body: bytes, properties: dict, headers: dict, queue: str) -> None:
    """Publish a message unchanged to `queue` and wait for its confirm.

    Through the exchange of the same name (`dead_letter` or `dead_letter_parked`), never the
    default exchange: the right to write to that one is the right to write to every queue.
    Raises one of MOVE_ERRORS: MessageNacked when the broker refuses it, a timeout or a
    connection error when the confirm does not come within DEAD_LETTER_PARK_CONFIRM_SECONDS,
    a channel error when the queue is gone (the publish is mandatory).
    """
    kept = {k: v for k, v in (properties or {}).items() if k not in DROPPED_PROPERTIES}
    kept["delivery_mode"] = 2  # persistent, whatever it was: it must survive a restart
    timeout = settings.DEAD_LETTER_PARK_CONFIRM_SECONDS
    channel.basic_publish_confirm(
        Message(body, application_headers=dict(headers or {}), **kept),
        exchange=queue,  # dead_letter routes every key to its queue; the parking one fans out
        routing_key=queue,
        mandatory=True,  # a queue that is gone returns the message instead of dropping it
        timeout=timeout,
        confirm_timeout=timeout,
    )


def unpark(connection, *, limit: int | None = None) -> int:
    """Move parked messages back to `dead_letter`, oldest first; returns how many moved.

    Moves at most the messages parked when it starts (or `limit`): one parked again while
    this runs (the database still down) waits for the next unpark instead of looping.
    """
    channel = connection.channel()
    try:
        _, parked, _ = channel.queue_declare(queue=PARKING_QUEUE, passive=True)
        moved = 0
        wanted = parked if limit is None else min(parked, limit)
        while moved < wanted:
            message = channel.basic_get(queue=PARKING_QUEUE, no_ack=False)
            if message is None:
                break
            _move(channel, message, queue=DEAD_LETTER_QUEUE)
            moved += 1
        return moved
    finally:
        channel.close()


def _move(channel, message, *, queue: str) -> None:
    """Republish a message got from another queue to `queue`, then ack the original."""
    properties = dict(message.properties)
    body = message.body
    if isinstance(body, str):  # py-amqp decodes bodies that name an encoding
        body = body.encode(properties.get("content_encoding") or "utf-8")
    republish(
        channel,
        body=bytes(body),
        properties=properties,
        headers=properties.get("application_headers") or {},
        queue=queue,
    )
    channel.basic_ack(message.delivery_tag)


def declare_dead_letter_queues(connection) -> bool:
    """Declare the parking queue and `dead_letter`, replacing a `dead_letter` that an older
    release declared with other arguments (see replace_dead_letter_queue). True if replaced.

    For the release phase (manage.py setup_broker); every other process only declares.
    """
    channel = connection.channel()
    try:
        parking_queue().bind(channel).declare()
        dead_letter_queue().bind(channel).declare()
    except PreconditionFailed as error:  # the broker has closed this channel
        logger.warning("%s has other arguments than this release's: %s", DEAD_LETTER_QUEUE, error)
    else:
        channel.close()
        return False
    replace_dead_letter_queue(connection)
    return True


def replace_dead_letter_queue(connection) -> int:
    """Replace a `dead_letter` queue declared by an older release with other arguments.

    RabbitMQ cannot change a queue's arguments (redeclaring it fails with
    PRECONDITION_FAILED), so the queue is rebuilt without losing a message: the parking queue
    is bound to the `dead_letter` exchange (so what dies meanwhile reaches it), the waiting
    dead letters are moved there, the old queue is deleted and declared again, and what is
    parked is moved back. A dead letter that reaches both queues meanwhile is recorded once
    (the consumer knows a death it has recorded). Refuses while anything consumes the old
    queue: a message a consumer holds unacked would be lost with the queue. Returns how many
    dead letters were moved back.
    """
    channel = connection.channel()
    try:
        parking_queue().bind(channel).declare()
        _, _, consumers = channel.queue_declare(queue=DEAD_LETTER_QUEUE, passive=True)
        if consumers:
            raise DeadLetterQueueInUse(
                f"{consumers} consumer(s) on {DEAD_LETTER_QUEUE}: stop the deadletters "
                "process, then declare the topology again"
            )
        channel.queue_bind(PARKING_QUEUE, exchange=DEAD_LETTER_EXCHANGE, routing_key="#")
        while (message := channel.basic_get(queue=DEAD_LETTER_QUEUE, no_ack=False)) is not None:
            _move(channel, message, queue=PARKING_QUEUE)
        channel.queue_delete(queue=DEAD_LETTER_QUEUE)
        dead_letter_queue().bind(channel).declare()
        channel.queue_unbind(PARKING_QUEUE, exchange=DEAD_LETTER_EXCHANGE, routing_key="#")
    finally:
        channel.close()
    moved = unpark(connection)
    logger.warning(
        "%s replaced with its new arguments; %s dead letter(s) moved", DEAD_LETTER_QUEUE, moved
    )
    return moved
