"""The transactional outbox: store a message with the change, publish it after commit.

`enqueue()` writes the row inside the caller's transaction, so a message exists exactly when
its cause was committed. On PostgreSQL the relay publishes it, woken by the commit itself
(messaging/relay.py), in batches: requests and tasks never wait for the broker. With
OUTBOX_PUBLISH_ON_COMMIT the committing process publishes it too, right after commit, and
the relay takes what that left (broker down, process killed). The row id is the task id, so
a message published twice is the same message and consumers apply it once.
"""

import logging
import uuid
from collections.abc import Collection, Iterable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core import errorreports, logcontext, tracing

from . import metrics
from .broker import BROKER_ERRORS, BatchPublisher, send_message, send_messages
from .models import OutboxMessage
from .topology import lane_of

logger = logging.getLogger(__name__)


def enqueue(
    *,
    task_name: str,
    kwargs: dict,
    headers: dict | None = None,
    message_id: uuid.UUID | None = None,
) -> OutboxMessage:
    """Store a message in the current transaction; it is published once that commits.

    The request id of the request or task at hand goes with it, for its consumer's logs, and
    so does its trace: OpenTelemetry's (`traceparent`, `tracestate`) when tracing is on, and
    Sentry's (`sentry-trace`, `baggage`) with Sentry on; its consumer continues it.
    With `message_id`, that message is sent again (a replay): its row, if it is still kept,
    becomes unpublished again; if it was pruned, it is written anew with this content.
    """
    headers = _with_context(headers)
    content = {
        "task_name": task_name,
        "lane": lane_of(task_name),
        "kwargs": kwargs,
        "headers": headers,
    }
    if message_id is None:
        message = OutboxMessage.objects.create(**content)
    else:
        message, _ = OutboxMessage.objects.update_or_create(
            id=message_id,
            defaults={
                "published_at": None,
                "attempts": 0,
                "last_error": "",
                "lane": content["lane"],
            },
            create_defaults=content,
        )
    _publish_after_commit(message)
    return message


def enqueue_new(*, task_name: str, kwargs_by_id: dict[uuid.UUID, dict]) -> list[OutboxMessage]:
    """Store new messages of one task under ids the caller chose, in one statement; like
    enqueue() otherwise. For a message that names its own subject, as a webhook delivery's
    id is its message's."""
    headers, lane = _with_context(None), lane_of(task_name)
    messages = OutboxMessage.objects.bulk_create(
        OutboxMessage(id=message_id, task_name=task_name, lane=lane, kwargs=kwargs, headers=headers)
        for message_id, kwargs in kwargs_by_id.items()
    )
    for message in messages:
        _publish_after_commit(message)
    return messages


def _with_context(headers: dict | None) -> dict:
    headers = {**(headers or {})}
    if request_id := logcontext.current_request_id():
        headers.setdefault("request_id", request_id)
    for name, value in errorreports.trace_headers().items():  # with Sentry on
        headers.setdefault(name, value)
    headers.update(tracing.propagation_headers())
    return headers


def _publish_after_commit(message: OutboxMessage) -> None:
    if settings.OUTBOX_PUBLISH_ON_COMMIT:
        transaction.on_commit(lambda: publish_committed(message), robust=True)


def publish_committed(message: OutboxMessage) -> bool:
    """Publish a message its own process just committed, then mark it published.

    The publish waits at most BROKER_PUBLISH_TIMEOUT (messaging.broker.send_message); on a
    broker error, a nack or no confirm in time, the row stays unpublished, with the attempt
    and the error recorded, for the relay, and the caller carries on.
    No row lock here: the relay only takes rows older than its --min-age, and should both
    publish one, consumers apply a message id once.
    """
    try:
        send_message(
            task_name=message.task_name,
            message_id=message.id,
            kwargs=message.kwargs,
            headers=message.headers,
        )
    except BROKER_ERRORS as error:
        logger.warning(
            "outbox publish failed, left for the relay: message=%s task=%s error=%s",
            message.id,
            message.task_name,
            error,
        )
        metrics.NOT_PUBLISHED.labels(publisher="on_commit").inc()
        OutboxMessage.objects.filter(pk=message.pk).update(
            attempts=F("attempts") + 1, last_error=str(error)[:2000]
        )
        return False
    metrics.PUBLISHED.labels(publisher="on_commit").inc()
    OutboxMessage.objects.filter(pk=message.pk, published_at__isnull=True).update(
        published_at=timezone.now()
    )
    return True


def publish_pending(
    *,
    ids: Iterable[uuid.UUID] | None = None,
    lanes: Collection[str] | None = None,
    limit: int = 100,
    min_age: timedelta | None = None,
    publisher: BatchPublisher | None = None,
) -> int:
    """Publish unpublished outbox rows (all, or those in `ids`, of `lanes`); return how
    many went out.

    Rows are locked with SKIP LOCKED, so any number of relays never publish one row at the
    same time. The batch is published in one go (messaging.broker.send_messages) and each
    row counts on its own: those the broker confirmed are marked published, the others (a
    nack, no confirm within BROKER_PUBLISH_TIMEOUT, a lost connection) stay unpublished
    with their error recorded, for the next pass. The relay passes its `publisher`, whose
    broker connection outlives the batch; without one, the batch has a connection of its own.
    """
    with transaction.atomic():
        pending = OutboxMessage.objects.select_for_update(skip_locked=True).filter(
            published_at__isnull=True
        )
        if ids is not None:
            pending = pending.filter(id__in=list(ids))
        if lanes is not None:
            pending = pending.filter(lane__in=list(lanes))
        if min_age is not None:
            pending = pending.filter(created_at__lte=timezone.now() - min_age)
        rows = pending.order_by("created_at").values_list("id", "task_name", "kwargs", "headers")
        batch = [
            {"message_id": row[0], "task_name": row[1], "kwargs": row[2], "headers": row[3]}
            for row in rows[:limit]
        ]
        if not batch:
            return 0

        send = publisher.send if publisher is not None else send_messages
        confirms = send(batch)
        if confirms.confirmed:
            OutboxMessage.objects.filter(id__in=confirms.confirmed).update(
                published_at=timezone.now()
            )
        by_error: dict[str, list[uuid.UUID]] = {}
        for message_id, error in confirms.failed.items():
            by_error.setdefault(error, []).append(message_id)
        for error, failed_ids in by_error.items():
            logger.warning(
                "outbox: %s of %s not confirmed, kept: %s", len(failed_ids), len(batch), error
            )
            OutboxMessage.objects.filter(id__in=failed_ids).update(
                attempts=F("attempts") + 1, last_error=error[:2000]
            )
    return len(confirms.confirmed)
