"""The dead-letter consumer: every message in `dead_letter` becomes a DeadLetter row, or is parked.

Nothing it is given is ever dropped, whatever the broker's default delivery limit:

- Recording that fails (the database down, anything else) is retried here, in the process,
  DEAD_LETTER_RECORD_ATTEMPTS times with exponential backoff, not by requeueing: RabbitMQ 4
  counts every requeue against a quorum queue's delivery limit and drops past it.
- Then the message is published unchanged to `dead_letter_parked` (messaging.parking), with
  a publisher confirm bounded by a timeout, and only after that confirm acked. An operator
  moves it back with `python manage.py deadletters unpark` once the cause is fixed.
- If the process dies on a message again and again, `dead_letter`'s own delivery limit
  (DEAD_LETTER_DELIVERY_LIMIT, messaging.topology) moves it to the parking queue.
- A message whose death is already recorded (the process died after the commit, before the
  ack, and the broker delivered it again) is acked without recording it twice.

While it backs off it keeps the AMQP connection's heartbeats going, so the broker does not
take it for dead and hand its unacked messages out again.
"""

import logging
import time

from django.conf import settings
from django.db import close_old_connections
from kombu import Consumer
from kombu.mixins import ConsumerMixin

from core import logcontext

from .deadletters import Death, read_death, record
from .parking import MOVE_ERRORS, republish
from .topology import PARKING_QUEUE, dead_letter_queue, declare_topology

logger = logging.getLogger("messaging.deadletters")

PREFETCH = 10


class DeadLetterConsumer(ConsumerMixin):
    """Turns every message in `dead_letter` into a DeadLetter row, then acks it."""

    def __init__(self, connection) -> None:
        self.connection = connection
        self.live_connection = None  # the connection consuming now (ConsumerMixin clones it)
        self.park_channel = None
        # After a park, the database is probably still down: the next message gets one try
        # before it is parked too, instead of the whole backoff each (a backlog would crawl).
        self.parking = False

    def get_consumers(self, _consumer_class, channel) -> list[Consumer]:
        declare_topology(self.connection)  # or only checks it (BROKER_DECLARES_TOPOLOGY)
        # on_message gets the raw message: a body that cannot be decoded is still recorded.
        return [
            Consumer(
                channel,
                queues=[dead_letter_queue()],
                on_message=self.on_message,
                prefetch_count=PREFETCH,
                auto_declare=False,  # declared, or checked, just above
            )
        ]

    def on_consume_ready(self, connection, channel, consumers, **kwargs) -> None:
        self.live_connection = connection
        self.park_channel = connection.channel()  # its own channel: a failed park closes it
        logger.info("dead-letter consumer ready")

    def on_message(self, message) -> None:
        death = read_death(
            body=raw_body(message), headers=message.headers, properties=message.properties
        )
        with logcontext.bound(**log_ids(death)):
            if self.record_with_retries(death):
                self.parking = False
                message.ack()
            elif not self.should_stop:
                self.park(message, death)

    def record_with_retries(self, death: Death) -> bool:
        """Record the death, retrying with backoff; False once the tries are spent."""
        attempts = 1 if self.parking else max(1, settings.DEAD_LETTER_RECORD_ATTEMPTS)
        for attempt in range(1, attempts + 1):
            close_old_connections()
            try:
                record(death)  # a death already recorded is recognised there and not counted
                return True
            except Exception:  # the database down, or anything else: logged, retried, parked
                logger.exception(
                    "could not record dead letter %s (try %s of %s)",
                    death.message_id,
                    attempt,
                    attempts,
                )
            if attempt < attempts:
                self.pause(backoff(attempt))
            if self.should_stop:
                return False  # unacked: the broker hands it to the next consumer
        return False

    def park(self, message, death: Death) -> None:
        """Move the message, unchanged, to the parking queue; ack it only once it is there."""
        try:
            if self.park_channel is None or not self.park_channel.is_open:
                self.park_channel = self.live_connection.channel()
            republish(
                self.park_channel,
                body=raw_body(message),
                properties=message.properties,
                headers=message.headers,
                queue=PARKING_QUEUE,
            )
        except MOVE_ERRORS:
            # Left in dead_letter: tried again, and past its delivery limit the broker parks it.
            logger.exception(
                "could not park dead letter %s; it goes back to dead_letter", death.message_id
            )
            message.requeue()
            return
        self.parking = True
        logger.error(
            "dead letter %s parked in %s: it could not be recorded; "
            "`manage.py deadletters unpark` moves it back once the cause is fixed",
            death.message_id,
            PARKING_QUEUE,
        )
        message.ack()

    def pause(self, seconds: float) -> None:
        """Sleep, keeping the AMQP heartbeats going (py-amqp sends them only when asked)."""
        deadline = time.monotonic() + seconds
        while not self.should_stop and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 1.0))
            if self.live_connection is not None:
                self.live_connection.heartbeat_check()


def backoff(attempt: int) -> float:
    """Seconds to wait after the `attempt`-th failed try: the base, doubling, capped.

    No jitter: one consumer, so there is no herd to spread.
    """
    return min(
        settings.DEAD_LETTER_RETRY_BASE_SECONDS * 2 ** (attempt - 1),
        settings.DEAD_LETTER_RETRY_MAX_SECONDS,
    )


def log_ids(death: Death) -> dict:
    """The dead message's ids, for the log lines about recording it (core/logcontext.py)."""
    return {
        "request_id": logcontext.sane_request_id(death.headers.get("request_id")),
        "order_id": death.subject_id,  # the log's one subject field (core/logcontext.py)
        "task": death.task_name or None,
        "task_id": death.message_id,
        "message_id": death.message_id,
    }


def raw_body(message) -> bytes:
    """The body as the broker holds it: py-amqp decodes bodies that name an encoding."""
    body = message.body
    if isinstance(body, str):
        return body.encode(message.content_encoding or "utf-8")
    return bytes(body)
