"""Publishing to RabbitMQ through the Celery app, with publisher confirms."""

import logging
import uuid

from amqp.exceptions import AMQPError
from kombu.exceptions import OperationalError

from config.celery import app

from .topology import declare_topology

logger = logging.getLogger(__name__)

# What a publish can raise when the broker is down, restarting or refuses the message.
BROKER_ERRORS: tuple[type[BaseException], ...] = (OperationalError, AMQPError, OSError)

_topology_declared = False


def send_message(*, task_name: str, message_id: uuid.UUID, kwargs: dict, headers: dict) -> None:
    """Publish one task message and wait for the broker's confirm.

    No retry here: a message that cannot be published stays in the outbox for the relay.
    """
    global _topology_declared
    with app.producer_or_acquire() as producer:
        if not _topology_declared:
            declare_topology(producer.connection)
            _topology_declared = True
        app.send_task(
            task_name,
            kwargs=kwargs,
            task_id=str(message_id),
            headers=headers,
            producer=producer,
            retry=False,
        )
