"""PipelineTask: the base of every pipeline task, and the one place for the failure policy.

| error                                             | what happens                            |
|---------------------------------------------------|-----------------------------------------|
| TransientError, database or broker unavailable    | retry in the broker: exponential backoff |
|                                                   | with full jitter, RETRY_MAX_ATTEMPTS     |
| retries exhausted, any other exception            | rejected without requeue: dead-lettered  |
| a payload that does not match the task's schema   | rejected before any work: dead-lettered  |
| PermanentError (missing record...)                | rejected without requeue: dead-lettered  |
| the worker process dies                           | redelivered; dead-lettered by RabbitMQ   |
|                                                   | after BROKER_DELIVERY_LIMIT deliveries   |
| a duplicate or out-of-order message               | the service's no-op; acked               |

Dead letters are recorded by the dead-letter consumer (manage.py consume_dead_letters), which
calls the task's on_dead_letter() (a stale one changes nothing); a replay calls on_replay()
in the transaction that writes the message to the outbox again. The RETRY_* settings are
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
from rest_framework import serializers

from core import logcontext
from core.errors import PermanentError, TransientError

logger = logging.getLogger(__name__)


class InvalidMessage(PermanentError):
    """The message body does not have the shape its task expects."""


RETRY, DEAD_LETTER, FAIL = "retry", "dead-letter", "fail"

# What happens to a message whose task raised: the first row the error matches decides.
# RETRY: again later, the wait in the broker; once RETRY_MAX_ATTEMPTS are used up, FAIL.
# DEAD_LETTER: rejected at once, never retried. FAIL (an error in no row, a bug): the task
# fails with its traceback stored, and a failed task is rejected, never acked
# (CELERY_TASK_ACKS_ON_FAILURE), so it is dead-lettered as well.
FAILURE_POLICY: tuple[tuple[type[BaseException], str], ...] = (
    (PermanentError, DEAD_LETTER),  # first: a permanent error is never retried
    (TransientError, RETRY),
    (DatabaseUnavailable, RETRY),
    (InterfaceError, RETRY),  # a connection the database closed
    (KombuOperationalError, RETRY),  # the broker, when a task publishes
    (ConnectionError, RETRY),
    (TimeoutError, RETRY),
)


def failure_policy(error: BaseException) -> str:
    """RETRY, DEAD_LETTER or FAIL for an error a task raised, by FAILURE_POLICY."""
    return next((then for kind, then in FAILURE_POLICY if isinstance(error, kind)), FAIL)


class PipelineTask(Task):
    acks_late = True
    reject_on_worker_lost = True
    # A success needs no record (the order's history is the record); a failure's traceback is
    # what an operator reads on its dead letter. Saves a database write per message.
    ignore_result = not settings.RESULTS_STORE_SUCCESSES
    store_errors_even_if_ignored = True
    autoretry_for = tuple(kind for kind, then in FAILURE_POLICY if then == RETRY)
    retry_backoff = settings.RETRY_BASE_SECONDS
    retry_backoff_max = settings.RETRY_MAX_SECONDS
    # Full jitter: a random delay between 0 and the backoff, so retries do not stampede.
    retry_jitter = settings.RETRY_JITTER
    max_retries = settings.RETRY_MAX_ATTEMPTS - 1  # the first attempt is not a retry
    # The schema of the message body: a serializer of the task's keyword arguments, which
    # the task receives validated. Messages carry ids only; tasks re-read the database.
    payload: type[serializers.Serializer] | None = None

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(**self.validated_payload(args, kwargs))
        except Exception as error:
            if failure_policy(error) != DEAD_LETTER:
                raise  # Celery retries or fails it (a retry that ran out fails too)
            logger.error("dead-lettering task=%s message=%s: %s", self.name, self.request.id, error)
            raise Reject(str(error), requeue=False) from error

    def log_ids(self, kwargs: dict) -> dict:
        """The ids on every log line about this message (config/celery.py binds them)."""
        return {
            "request_id": logcontext.sane_request_id(getattr(self.request, "request_id", None)),
            "task": self.name,
            "task_id": self.request.id,
            "message_id": self.request.id,  # the outbox row's id is the Celery task id
            "attempt": (self.request.retries or 0) + 1,
        }

    def validated_payload(self, args: tuple, kwargs: dict) -> dict:
        """The message's keyword arguments checked against `payload`, or InvalidMessage."""
        if args:
            raise InvalidMessage("positional arguments are not accepted")
        # The pipeline never links tasks: a callback in a forged message would run a task of
        # the sender's choosing after this one.
        if linked := [name for name in LINK_FIELDS if getattr(self.request, name, None)]:
            raise InvalidMessage(f"linked tasks are not accepted: {', '.join(linked)}")
        if not _is_uuid(self.request.id):
            raise InvalidMessage(f"the message id is not a UUID: {self.request.id!r:.100}")
        if self.payload is None:
            return kwargs
        schema = self.payload(data=kwargs)
        if unknown := sorted(set(kwargs) - set(schema.fields)):
            raise InvalidMessage(f"unknown fields: {', '.join(map(str, unknown))[:200]}")
        if not schema.is_valid():
            raise InvalidMessage(f"invalid payload: {_flatten(schema.errors)[:500]}")
        return schema.validated_data

    def subject_of(self, kwargs: dict) -> object:
        """The id of what a message of this task is about, kept on its dead letter (admin,
        search, the dashboard); None when the task has none."""
        return None

    def on_dead_letter(self, *, kwargs: dict, reason: str) -> bool:
        """Called when this task's message was dead-lettered, in the transaction recording it.

        Returns False when the dead letter is stale (the work it was for was done by another
        copy): it is recorded as STALE and needs no operator.
        """
        return True

    def on_replay(self, *, kwargs: dict) -> None:
        """Called when an operator replays this task's dead letter, in the transaction that
        writes the message to the outbox again; raise an ApplicationError to refuse."""

    @property
    def message_id(self) -> uuid.UUID:
        """The id of the message being processed (the outbox row's id)."""
        return uuid.UUID(self.request.id)


LINK_FIELDS = ("callbacks", "errbacks", "chain", "chord", "group")


def _is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _flatten(errors: dict) -> str:
    return "; ".join(
        f"{field}: {' '.join(map(str, problems))}" for field, problems in errors.items()
    )


class UUIDText(serializers.UUIDField):
    """A payload field: a UUID written as text, the only way the pipeline writes ids."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)
