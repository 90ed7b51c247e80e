import logging
import signal
import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections
from kombu import Consumer
from kombu.mixins import ConsumerMixin

from config.celery import app
from core import logcontext
from messaging.deadletters import Death, read_death, record
from messaging.topology import dead_letter_queue, declare_topology

logger = logging.getLogger("messaging.deadletters")

RETRY_PAUSE_SECONDS = 1


class DeadLetterConsumer(ConsumerMixin):
    """Turns every message in `dead_letter` into a DeadLetter row, then acks it."""

    def __init__(self, connection) -> None:
        self.connection = connection

    def get_consumers(self, _consumer_class, channel) -> list[Consumer]:
        declare_topology(self.connection)
        # on_message gets the raw message: a body that cannot be decoded is still recorded.
        return [
            Consumer(
                channel, queues=[dead_letter_queue()], on_message=self.on_message, prefetch_count=10
            )
        ]

    def on_consume_ready(self, connection, channel, consumers, **kwargs) -> None:
        logger.info("dead-letter consumer ready")

    def on_message(self, message) -> None:
        close_old_connections()
        try:
            death = read_death(
                body=_raw_body(message), headers=message.headers, properties=message.properties
            )
            with logcontext.bound(**log_ids(death)):
                record(death)
        except Exception:
            # The database may be down: keep the message in dead_letter and try it again soon.
            logger.exception("could not record a dead letter; it goes back to the queue")
            time.sleep(RETRY_PAUSE_SECONDS)
            message.requeue()
            return
        message.ack()


def log_ids(death: Death) -> dict:
    """The dead message's ids, for the log lines about recording it (core/logcontext.py)."""
    return {
        "request_id": logcontext.sane_request_id(death.headers.get("request_id")),
        "order_id": death.order_id,
        "task": death.task_name or None,
        "task_id": death.message_id,
        "message_id": death.message_id,
    }


def _raw_body(message) -> bytes:
    """The body as the broker holds it: py-amqp decodes bodies that name an encoding."""
    body = message.body
    if isinstance(body, str):
        return body.encode(message.content_encoding or "utf-8")
    return bytes(body)


class Command(BaseCommand):
    help = (
        "Record every dead-lettered message as a DeadLetter row for the admin. Runs until stopped."
    )

    def handle(self, *args, **options) -> None:
        with app.connection_for_read() as connection:
            consumer = DeadLetterConsumer(connection)
            signal.signal(signal.SIGTERM, lambda *_: setattr(consumer, "should_stop", True))
            consumer.run()
        logger.info("dead-letter consumer stopped")
