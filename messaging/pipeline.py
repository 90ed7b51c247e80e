"""PipelineTask: the base of every pipeline task, and the one place for the failure policy.

| error                                             | what happens                            |
|---------------------------------------------------|-----------------------------------------|
| TransientError, database or broker unavailable    | retry in the broker: exponential backoff |
|                                                   | with full jitter, RETRY_MAX_ATTEMPTS     |
| retries exhausted, any other exception            | rejected without requeue: dead-lettered  |
| PermanentError (bad payload, missing record)      | rejected without requeue: dead-lettered  |
| the worker process dies                           | redelivered; dead-lettered by RabbitMQ   |
|                                                   | after BROKER_DELIVERY_LIMIT deliveries   |
| a duplicate or out-of-order message               | the service's no-op; acked               |

Dead letters are recorded by the dead-letter consumer (manage.py consume_dead_letters), which
calls the task's on_dead_letter(); a replay calls on_replay() first. The RETRY_* settings are
read once, when the tasks are loaded.
"""

import logging
import uuid

from celery import Task
from celery.exceptions import Reject
from django.conf import settings
from django.db import InterfaceError
from django.db import OperationalError as DatabaseUnavailable
from kombu.exceptions import OperationalError as KombuOperationalError

from .errors import PermanentError, TransientError

logger = logging.getLogger(__name__)


class InvalidMessage(PermanentError):
    """The message body does not have the shape its task expects."""


class PipelineTask(Task):
    acks_late = True
    reject_on_worker_lost = True
    # A success needs no record (the order's history is the record); a failure's traceback is
    # what an operator reads on its dead letter. Saves a database write per message.
    ignore_result = not settings.RESULTS_STORE_SUCCESSES
    store_errors_even_if_ignored = True
    autoretry_for = (
        TransientError,
        DatabaseUnavailable,
        InterfaceError,
        KombuOperationalError,
        ConnectionError,
        TimeoutError,
    )
    retry_backoff = settings.RETRY_BASE_SECONDS
    retry_backoff_max = settings.RETRY_MAX_SECONDS
    # Full jitter: a random delay between 0 and the backoff, so retries do not stampede.
    retry_jitter = settings.RETRY_JITTER
    max_retries = settings.RETRY_MAX_ATTEMPTS - 1  # the first attempt is not a retry

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except PermanentError as error:
            logger.error("dead-lettering task=%s message=%s: %s", self.name, self.request.id, error)
            raise Reject(str(error), requeue=False) from error

    def on_dead_letter(self, *, kwargs: dict, reason: str) -> None:
        """Called by the dead-letter consumer when this task's message was dead-lettered."""

    def on_replay(self, *, kwargs: dict) -> None:
        """Called when an operator replays this task's dead letter, before it is published."""

    @property
    def message_id(self) -> uuid.UUID:
        """The id of the message being processed (the outbox row's id)."""
        return uuid.UUID(self.request.id)


def uuid_from(value: object, *, field: str) -> uuid.UUID:
    """Decode an id from a message body, or refuse the message."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidMessage(f"{field} is not a UUID: {value!r:.100}") from None
