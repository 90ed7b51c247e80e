"""PipelineTask: the base of every pipeline task, and the one place for the failure policy.

| error                                             | what happens                            |
|---------------------------------------------------|-----------------------------------------|
| TransientError, database or broker unavailable    | retry in the broker: exponential backoff |
|                                                   | with full jitter, RETRY_MAX_ATTEMPTS     |
| retries exhausted, any other exception            | rejected without requeue: dead-lettered  |
| PermanentError (bad payload, missing record)      | rejected without requeue: dead-lettered  |
| a duplicate or out-of-order message               | the service's no-op; acked               |
"""

import logging
import uuid

from celery import Task
from celery.exceptions import Reject
from django.conf import settings
from django.db import InterfaceError
from django.db import OperationalError as DatabaseUnavailable

from .broker import BROKER_ERRORS
from .errors import PermanentError, TransientError

logger = logging.getLogger(__name__)


class InvalidMessage(PermanentError):
    """The message body does not have the shape its task expects."""


class PipelineTask(Task):
    acks_late = True
    reject_on_worker_lost = True
    autoretry_for = (TransientError, DatabaseUnavailable, InterfaceError, *BROKER_ERRORS)
    retry_backoff = settings.RETRY_BASE_SECONDS
    retry_backoff_max = settings.RETRY_MAX_SECONDS
    retry_jitter = True  # full jitter: a random delay between 0 and the backoff
    max_retries = settings.RETRY_MAX_ATTEMPTS - 1  # the first attempt is not a retry

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except PermanentError as error:
            logger.error("dead-lettering task=%s message=%s: %s", self.name, self.request.id, error)
            raise Reject(str(error), requeue=False) from error

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
