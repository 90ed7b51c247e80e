"""The worker's consumer: Celery's, with two changes this pipeline depends on.

1. The dead-letter exchange and queue are declared before any work queue is consumed: a
   queue whose dead-letter exchange does not exist drops what it dead-letters.
2. A message that cannot be decoded (corrupt, or a content type we refuse, such as pickle) is
   rejected into the dead-letter queue. Celery acks and drops it by default.

Unknown task names and malformed task messages are already rejected without requeue by
Celery, so they reach the dead-letter queue too. Enabled by CELERY_WORKER_CONSUMER.

With BROKER_DECLARES_TOPOLOGY off (a broker user per role) the worker declares none of the
project's queues nor Celery's delayed-delivery ones: it checks that the release declared them.
"""

import logging

from celery.worker.consumer import Consumer
from celery.worker.consumer.delayed_delivery import DelayedDelivery
from django.conf import settings

from .topology import declare_topology

logger = logging.getLogger(__name__)


class DeclaredDelayedDelivery(DelayedDelivery):
    """Celery's native delayed delivery set-up (declares `celery_delayed_*`, binds the work
    queues to it), left to the release phase when this worker may not declare."""

    def include_if(self, c) -> bool:
        return settings.BROKER_DECLARES_TOPOLOGY and super().include_if(c)


class PipelineConsumer(Consumer):
    class Blueprint(Consumer.Blueprint):
        default_steps = [
            "messaging.consumer:DeclaredDelayedDelivery"
            if step.endswith(":DelayedDelivery")
            else step
            for step in Consumer.Blueprint.default_steps
        ]

    def connect(self):
        # On every (re)connection, before the Tasks step starts consuming.
        connection = super().connect()
        declare_topology(connection)
        return connection

    def on_decode_error(self, message, exc: Exception) -> None:
        logger.error(
            "undecodable message dead-lettered: %s (content type %r, headers %r)",
            exc,
            message.content_type,
            message.headers,
        )
        message.reject(requeue=False)
