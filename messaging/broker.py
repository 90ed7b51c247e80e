"""Publishing to RabbitMQ through the Celery app, with publisher confirms.

`CELERY_BROKER_URL` may name several nodes of a cluster separated by ';' (kombu failover):
a publish that loses its node is retried once on each other node, and only a confirmed
publish counts.
"""

import logging
import time
import uuid
from collections.abc import Sequence

from amqp.exceptions import AMQPError
from django.conf import settings
from kombu import Producer
from kombu.exceptions import OperationalError

from config.celery import app

from .topology import declare_topology

logger = logging.getLogger(__name__)

# What a publish can raise when the broker is down, restarting or refuses the message.
BROKER_ERRORS: tuple[type[BaseException], ...] = (OperationalError, AMQPError, OSError)

_topology_declared = False


def broker_nodes(url: str) -> list[str]:
    """The node URLs of a broker URL: one, or several separated by ';' (kombu failover)."""
    return [node.strip() for node in url.split(";") if node.strip()]


def failover_retries() -> int:
    """Retries a publish gets on a connection error: one per other node, none with one node."""
    return len(broker_nodes(app.conf.broker_url)) - 1


def send_message(*, task_name: str, message_id: uuid.UUID, kwargs: dict, headers: dict) -> None:
    """Publish one task message and wait for the broker's confirm.

    On a connection error (the node went away, before or during the confirm) kombu switches to
    the next node of a failover list and publishes again, once per other node, without
    waiting; with one node there is no retry. A message that still cannot be published stays
    in the outbox for the relay.
    """
    retries = failover_retries()
    with app.producer_or_acquire() as producer:
        _declare_topology_once(producer.connection)
        app.send_task(
            task_name,
            kwargs=kwargs,
            task_id=str(message_id),
            headers=headers,
            producer=producer,
            retry=retries > 0,
            retry_policy={
                "max_retries": retries,
                "interval_start": 0,
                "interval_step": 0,
                "interval_max": 0,
            },
        )


class BatchNotConfirmed(AMQPError):
    """The broker refused (nacked) or did not confirm a batch in time."""


def send_messages(messages: Sequence[dict], *, confirm_timeout: float = 30) -> None:
    """Publish task messages in one go, then wait once until the broker has confirmed all.

    For the relay: one round trip per batch instead of one per message. Each item holds
    task_name, message_id, kwargs and headers. Raises a BROKER_ERRORS error, in which case
    none of the batch counts as published (some may have been: consumers apply an id once).
    """
    # Confirms handled here, not by py-amqp's per-publish wait.
    options = {**app.conf.broker_transport_options, "confirm_publish": False}
    with app.connection_for_write(transport_options=options) as connection:
        # Each node of a failover list once (kombu switches node on every failed attempt).
        connection.ensure_connection(max_retries=max(1, failover_retries()))
        _declare_topology_once(connection)
        channel = connection.channel()
        channel.confirm_select()
        outcome = {"acked": 0, "nacked": False}

        def on_ack(delivery_tag: int, multiple: bool) -> None:
            outcome["acked"] = delivery_tag if multiple else max(outcome["acked"], delivery_tag)

        def on_nack(delivery_tag: int, multiple: bool) -> None:
            outcome["nacked"] = True

        channel.events["basic_ack"].add(on_ack)
        channel.events["basic_nack"].add(on_nack)
        producer = Producer(channel)
        for message in messages:
            app.send_task(
                message["task_name"],
                kwargs=message["kwargs"],
                task_id=str(message["message_id"]),
                headers=message["headers"],
                producer=producer,
                retry=False,
            )
        # Delivery tags run 1..n on a fresh channel; an ack may cover all before it.
        deadline = time.monotonic() + confirm_timeout
        while outcome["acked"] < len(messages) and not outcome["nacked"]:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BatchNotConfirmed(f"{len(messages)} message(s) not confirmed in time")
            connection.drain_events(timeout=remaining)
        if outcome["nacked"]:
            raise BatchNotConfirmed("the broker refused (nacked) a message of the batch")


def _declare_topology_once(connection) -> None:
    """Before a process's first publish: a fresh broker may not have the queues yet."""
    global _topology_declared
    if not _topology_declared:
        declare_topology(connection)
        _topology_declared = True


def ping_broker(*, timeout: float) -> None:
    """Connect to the configured broker (login and virtual host included), then disconnect.

    For readiness checks: raises a BROKER_ERRORS error when the broker cannot be reached
    within about `timeout` seconds. Reads CELERY_BROKER_URL at call time.
    """
    with app.connection_for_write(
        url=settings.CELERY_BROKER_URL, connect_timeout=timeout
    ) as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0)
