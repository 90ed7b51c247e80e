"""Dead letters: record what RabbitMQ dead-lettered, and let operators replay or discard it.

A task reacts to its message's death and replay through `on_dead_letter(kwargs=, reason=)`
and `on_replay(kwargs=)` (messaging.pipeline.PipelineTask); that is how an order goes to
FAILED and back, and how a stale copy is told apart, without this module knowing of orders.
A replay writes the message to the outbox again in the transaction of `on_replay`, so it is
delivered even if the broker is away when the operator presses the button.
"""

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django_celery_results.models import TaskResult

from config.celery import app
from core import logcontext
from core.errors import ApplicationError

from . import outbox
from .models import DeadLetter

logger = logging.getLogger(__name__)

MAX_ID_LENGTH = 255


class DeadLetterNotReplayable(ApplicationError):
    """The dead letter was discarded, or is no task message this system can send again."""


@dataclass(frozen=True)
class Death:
    """What one dead-lettered AMQP message says about itself."""

    message_id: str
    queue: str
    exchange: str
    routing_key: str
    reason: str
    task_name: str
    kwargs: dict | None
    order_id: uuid.UUID | None
    headers: dict
    properties: dict
    body: bytes
    content_type: str
    content_encoding: str


def read_death(*, body: bytes, headers: dict | None, properties: dict | None) -> Death:
    """Decode whatever can be decoded of a dead letter; never fails on a bad body."""
    headers = headers or {}
    properties = properties or {}
    deaths = headers.get("x-death") or [{}]
    latest = deaths[0]  # RabbitMQ keeps the most recent death first
    kwargs = _celery_kwargs(body, properties.get("content_type", ""))
    message_id = str(headers.get("id") or properties.get("correlation_id") or "")
    if not message_id or len(message_id) > MAX_ID_LENGTH:  # no usable id: name it by its body
        message_id = f"sha256:{hashlib.sha256(body).hexdigest()}"
    return Death(
        message_id=message_id,
        queue=_text(latest.get("queue") or headers.get("x-first-death-queue"), 200),
        exchange=_text(latest.get("exchange"), 200),
        routing_key=_text((latest.get("routing-keys") or [""])[0], 255),
        reason=_text(latest.get("reason") or headers.get("x-first-death-reason") or "unknown", 30),
        task_name=_text(headers.get("task"), 200),
        kwargs=kwargs,
        order_id=_uuid_or_none((kwargs or {}).get("order_id")),
        headers=_json_safe(headers),
        properties=_json_safe(properties),
        body=body,
        content_type=_text(properties.get("content_type"), 100),
        content_encoding=_text(properties.get("content_encoding"), 100),
    )


def _text(value: object, limit: int) -> str:
    """A header value as text that fits its column (foreign messages can carry anything)."""
    return _json_safe(str(value or ""))[:limit]


def record(death: Death) -> DeadLetter:
    """Store a death (one row per message id) and let its task react, in one transaction.

    The task says whether the dead letter still matters: NEW for an operator, or STALE when
    its work was already done by another copy of the message.
    """
    now = timezone.now()
    with transaction.atomic():
        dead_letter, created = DeadLetter.objects.select_for_update().get_or_create(
            message_id=death.message_id,
            defaults=_fields_of(death) | {"first_death_at": now, "last_death_at": now},
        )
        if not created:
            for name, value in _fields_of(death).items():
                setattr(dead_letter, name, value)
            dead_letter.death_count += 1
            dead_letter.last_death_at = now
        task = _task_named(death.task_name)
        current = True
        if task is not None and hasattr(task, "on_dead_letter") and death.kwargs is not None:
            current = task.on_dead_letter(kwargs=death.kwargs, reason=death.reason)
        dead_letter.status = DeadLetter.Status.NEW if current else DeadLetter.Status.STALE
        dead_letter.save()
    logger.warning(
        "dead letter recorded: message=%s task=%s queue=%s reason=%s order=%s count=%s status=%s",
        death.message_id,
        death.task_name,
        death.queue,
        death.reason,
        death.order_id,
        dead_letter.death_count,
        dead_letter.status,
    )
    return dead_letter


def last_error_of(dead_letter: DeadLetter) -> str:
    """The error the task failed with, as the result backend stored it, where known."""
    if dead_letter.last_error:
        return dead_letter.last_error
    result = TaskResult.objects.filter(task_id=dead_letter.message_id).first()
    return result.traceback or str(result.result or "") if result else ""


def replay(*, dead_letter_id: int, actor: AbstractBaseUser | None) -> DeadLetter:
    """Send a dead letter's message again: same id and content, a full set of retries.

    In one transaction: its task's `on_replay` runs (a FAILED order resumes at the step that
    failed; a step the order has passed is refused), the message is written to the outbox
    again and the row is marked REPLAYED. The outbox publishes it after commit, or the relay
    does later if the broker is away: nothing needs undoing. Replaying twice is safe: it is
    the same message, and its consumer applies it once.
    """
    with transaction.atomic():
        dead_letter = DeadLetter.objects.select_for_update().get(pk=dead_letter_id)
        kwargs = _celery_kwargs(bytes(dead_letter.body), dead_letter.content_type)
        task = _task_named(dead_letter.task_name)
        if dead_letter.status == DeadLetter.Status.DISCARDED:
            raise DeadLetterNotReplayable(
                f"Dead letter {dead_letter.pk} cannot be replayed: it was discarded."
            )
        if task is None or kwargs is None or not _is_uuid(dead_letter.message_id):
            raise DeadLetterNotReplayable(
                f"Dead letter {dead_letter.pk} cannot be replayed: it is not a task message "
                f"of this system (task {dead_letter.task_name or 'unknown'!r}); discard it."
            )
        if hasattr(task, "on_replay"):
            task.on_replay(kwargs=kwargs)
        request_id = logcontext.sane_request_id(dead_letter.headers.get("request_id"))
        outbox.enqueue(
            task_name=task.name,
            kwargs=kwargs,
            headers={"request_id": request_id} if request_id else {},
            message_id=uuid.UUID(dead_letter.message_id),
        )
        dead_letter.status = DeadLetter.Status.REPLAYED
        dead_letter.replay_count += 1
        dead_letter.acted_by = actor
        dead_letter.acted_at = timezone.now()
        dead_letter.save(update_fields=["status", "replay_count", "acted_by", "acted_at"])
    logger.info("dead letter %s replayed by %s", dead_letter.message_id, actor)
    return dead_letter


def discard(*, dead_letter_id: int, actor: AbstractBaseUser | None) -> DeadLetter:
    """Mark a dead letter as handled without replaying it; the row is kept as a record."""
    with transaction.atomic():
        dead_letter = DeadLetter.objects.select_for_update().get(pk=dead_letter_id)
        dead_letter.status = DeadLetter.Status.DISCARDED
        dead_letter.acted_by = actor
        dead_letter.acted_at = timezone.now()
        dead_letter.save(update_fields=["status", "acted_by", "acted_at"])
    logger.info("dead letter %s discarded by %s", dead_letter.message_id, actor)
    return dead_letter


@cache
def _tasks_loaded() -> bool:
    # Outside a worker (the dead-letter consumer, the admin) Celery loads tasks lazily.
    app.loader.import_default_modules()
    return True


def _task_named(name: str):
    return app.tasks.get(name) if name and _tasks_loaded() else None


def _fields_of(death: Death) -> dict[str, Any]:
    return {
        "queue": death.queue,
        "exchange": death.exchange,
        "routing_key": death.routing_key,
        "task_name": death.task_name,
        "order_id": death.order_id,
        "reason": death.reason,
        "headers": death.headers,
        "properties": death.properties,
        "body": death.body,
        "content_type": death.content_type,
        "content_encoding": death.content_encoding,
    }


def _celery_kwargs(body: bytes, content_type: str) -> dict | None:
    """The kwargs of a Celery protocol-2 JSON body ([args, kwargs, embed]), else None."""
    if content_type != "application/json":
        return None
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(decoded, list) and len(decoded) >= 2 and isinstance(decoded[1], dict):
        return decoded[1]
    return None


def _is_uuid(value: str) -> bool:
    return _uuid_or_none(value) is not None


def _uuid_or_none(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value is not None else None
    except ValueError:
        return None


def _json_safe(value: Any) -> Any:
    """AMQP tables hold datetimes, bytes and nested tables; JSON holds less."""
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="backslashreplace")
    if isinstance(value, str):
        return value.replace("\x00", "\\x00")  # PostgreSQL's JSON cannot hold NUL
    if value is None or isinstance(value, (int, float, bool)):
        return value
    return str(value)
