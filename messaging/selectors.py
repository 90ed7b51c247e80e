"""Reads for operators: how full the queues are, what waits in the outbox, and the dead
letters nobody has handled yet."""

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Count, Min, QuerySet

from config.celery import app

from .broker import BROKER_ERRORS, broker_ssl
from .models import DeadLetter, OutboxMessage
from .topology import DEAD_LETTER_QUEUE, LANES, PARKING_QUEUE, WORK_QUEUES

logger = logging.getLogger(__name__)

# The parking queue too: what waits there needs an operator (manage.py deadletters unpark).
WATCHED_QUEUES = (*WORK_QUEUES, DEAD_LETTER_QUEUE, PARKING_QUEUE)


@dataclass(frozen=True)
class QueueDepth:
    """A queue's ready messages and consumers; None for both when they could not be read,
    and consumers None alone when the transport cannot count them (kombu's filesystem
    broker always says 0)."""

    name: str
    messages: int | None
    consumers: int | None

    @property
    def available(self) -> bool:
        return self.messages is not None


def queue_depths(
    *, names: Sequence[str] = WATCHED_QUEUES, timeout: float | None = None, url: str | None = None
) -> list[QueueDepth]:
    """Each queue's depth by a passive declare, which reads a queue and never creates one.

    Asks the Celery app's broker, or `url`. Waits at most `timeout` seconds (default
    BROKER_CONNECTION_TIMEOUT) for the broker; when
    it cannot be reached, or a queue does not exist, that depth is unavailable (None) rather
    than an error: a dashboard must still render when the broker is down.
    """
    timeout = settings.BROKER_CONNECTION_TIMEOUT if timeout is None else timeout
    unavailable = [QueueDepth(name=name, messages=None, consumers=None) for name in names]
    try:
        # A URL of its own, its own TLS options; else the app's, which Celery knows.
        ssl = broker_ssl(url) if url else None
        with app.connection_for_read(url=url, ssl=ssl, connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
            counts_consumers = connection.transport.driver_type == "amqp"
            return [_passive_declare(connection, name, counts_consumers) for name in names]
    except BROKER_ERRORS as error:
        logger.warning("queue depths unavailable: broker unreachable (%s)", error)
        return unavailable


def _passive_declare(connection, name: str, counts_consumers: bool) -> QueueDepth:
    # A channel per queue: the broker closes the channel on which a passive declare fails.
    channel = connection.channel()
    try:
        _, messages, consumers = channel.queue_declare(queue=name, passive=True)
    except connection.channel_errors as error:
        logger.warning("queue %s unavailable: %s", name, error)
        return QueueDepth(name=name, messages=None, consumers=None)
    finally:
        with contextlib.suppress(*BROKER_ERRORS):
            channel.close()
    return QueueDepth(
        name=name, messages=messages, consumers=consumers if counts_consumers else None
    )


@dataclass(frozen=True)
class NewDeadLetters:
    count: int
    latest: list[DeadLetter]  # newest death first, without their bodies and headers


def new_dead_letters(*, limit: int = 10) -> NewDeadLetters:
    """The dead letters still NEW (neither replayed nor discarded): how many, and the latest."""
    latest = (
        _new()
        .only("id", "task_name", "queue", "reason", "subject_id", "death_count", "last_death_at")
        .order_by("-last_death_at", "-id")[:limit]
    )
    return NewDeadLetters(count=count_new_dead_letters(), latest=list(latest))


def dead_letters_matching(
    *,
    task: str = "",
    reason: str = "",
    queue: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    statuses: Sequence[str] | None = (DeadLetter.Status.NEW,),
) -> QuerySet[DeadLetter]:
    """Dead letters matching every filter given, oldest last death first: what a bulk
    replay acts on (admin and `manage.py deadletters`), NEW ones unless `statuses` says.

    task and queue: exact names; reason: text found in the reason, any case; since and
    until: bounds on the last death, both included.
    """
    found = DeadLetter.objects.order_by("last_death_at", "pk")
    if statuses is not None:
        found = found.filter(status__in=statuses)
    if task:
        found = found.filter(task_name=task)
    if reason:
        found = found.filter(reason__icontains=reason)
    if queue:
        found = found.filter(queue=queue)
    if since is not None:
        found = found.filter(last_death_at__gte=since)
    if until is not None:
        found = found.filter(last_death_at__lte=until)
    return found


@dataclass(frozen=True)
class UnpublishedOutbox:
    count: int
    oldest_created_at: datetime | None


def unpublished_outbox() -> dict[str, UnpublishedOutbox]:
    """By lane, every lane named: how many outbox rows wait to be published, and when the
    oldest was written. One query."""
    found = {
        row["lane"]: UnpublishedOutbox(count=row["count"], oldest_created_at=row["oldest"])
        for row in OutboxMessage.objects.filter(published_at__isnull=True)
        .values("lane")
        .annotate(count=Count("pk"), oldest=Min("created_at"))
        .order_by()
    }
    return {lane: found.get(lane, UnpublishedOutbox(0, None)) for lane in (*LANES, *found)}


def count_new_dead_letters() -> int:
    """Dead letters still waiting for an operator (NEW). One query."""
    return _new().count()


def _new() -> QuerySet[DeadLetter]:
    return DeadLetter.objects.filter(status=DeadLetter.Status.NEW)


def open_dead_letter_id(*, message_id: str) -> int | None:
    """The id of the message's dead letter if it waits for an operator (NEW), else None."""
    return _new().filter(message_id=message_id).values_list("pk", flat=True).first()
