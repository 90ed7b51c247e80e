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
import math
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
from core import errorreports, logcontext
from core.errors import ApplicationError

from . import outbox
from .models import DeadLetter
from .topology import DEAD_LETTER_QUEUE, PARKING_QUEUE

logger = logging.getLogger(__name__)

# Headers RabbitMQ adds when it dead-letters or redelivers a message.
DEATH_HEADER_PREFIXES = ("x-death", "x-first-death-", "x-last-death-", "x-delivery-count")

MAX_ID_LENGTH = 255
# Bounds on what is stored of a dead letter's headers and properties (characters of text),
# on each value in them and on their nesting: a foreign message can carry anything.
MAX_HEADERS_CHARS = 32_000
MAX_PROPERTIES_CHARS = 4_000
MAX_VALUE_CHARS = 4_000
MAX_DEPTH = 8
# The dead-letter queue and its parking queue: a death there is not the one to record.
OWN_QUEUES = (DEAD_LETTER_QUEUE, PARKING_QUEUE)


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
    subject_id: uuid.UUID | None
    headers: dict
    properties: dict
    body: bytes
    content_type: str
    content_encoding: str


def read_death(*, body: bytes, headers: dict | None, properties: dict | None) -> Death:
    """Decode whatever can be decoded of a dead letter; never fails, whatever it carries.

    Every text that reaches the database is storable (no NUL, valid UTF-8, fits its column)
    and the stored headers and properties are JSON of bounded size, so any message the
    broker can deliver can be recorded.
    """
    headers = headers if isinstance(headers, dict) else {}
    properties = properties if isinstance(properties, dict) else {}
    latest = _original_death(headers)
    kwargs = _celery_kwargs(body, properties.get("content_type", ""))
    task_name = _text(headers.get("task"), 200)
    return Death(
        message_id=_message_id(headers.get("id") or properties.get("correlation_id"), body),
        queue=_text(latest.get("queue") or headers.get("x-first-death-queue"), 200),
        exchange=_text(latest.get("exchange"), 200),
        routing_key=_text(_first(latest.get("routing-keys")), 255),
        reason=_text(latest.get("reason") or headers.get("x-first-death-reason") or "unknown", 30),
        task_name=task_name,
        kwargs=kwargs,
        subject_id=_subject_of(task_name, kwargs),
        headers=_bounded(_death_headers_first(headers), MAX_HEADERS_CHARS),
        # py-amqp lists the headers among the properties too: stored once, under headers.
        properties=_bounded(
            {k: v for k, v in properties.items() if k != "application_headers"},
            MAX_PROPERTIES_CHARS,
        ),
        body=body,
        content_type=_text(properties.get("content_type"), 100),
        content_encoding=_text(properties.get("content_encoding"), 100),
    )


def _original_death(headers: dict) -> dict:
    """The death in the queue the message was working in: most recent first in `x-death`.

    A message can also have died in `dead_letter` itself (past its delivery limit, on its way
    to the parking queue); that death is not the one to record, since a replay goes to the
    queue where the work failed.
    """
    deaths = [d for d in _as_list(headers.get("x-death")) if isinstance(d, dict)]
    for death in deaths:
        if _text(death.get("queue"), 200) not in OWN_QUEUES:
            return death
    return deaths[0] if deaths else {}


def death_mark(headers: dict) -> tuple[str, ...] | None:
    """What tells one death of a message from another, from its (stored) headers.

    The queue, reason, count and time of its original death in `x-death`. A copy of the same
    death delivered again (the consumer died after recording it, before its ack; or it was
    parked and unparked) carries the same mark: the broker neither adds a death nor bumps a
    count on a redelivery, which only shows in `x-delivery-count` and the redelivered flag.
    A second death has a later time, or (dying again in the same queue without a replay,
    which strips the death headers) a higher count. None when there is no `x-death`.
    """
    death = _original_death(headers)
    if not death:
        return None
    return tuple(_text(death.get(key), 200) for key in ("queue", "reason", "count", "time"))


def _message_id(value: object, body: bytes) -> str:
    """The message's id as stored: its own where usable, else a digest that names it."""
    text = _text(value, 10**6)
    if text and len(text) <= MAX_ID_LENGTH:
        return text
    if text:  # too long for the column: a digest of the id, so two such messages stay two
        return f"sha256-id:{hashlib.sha256(text.encode()).hexdigest()}"
    return f"sha256:{hashlib.sha256(body).hexdigest()}"


def _text(value: object, limit: int) -> str:
    """A header value as text that fits its column (foreign messages can carry anything)."""
    if value is None:
        return ""
    return _storable_text(value if isinstance(value, (str, bytes)) else str(value))[:limit]


def _first(value: object) -> object:
    items = _as_list(value)
    return items[0] if items else value if isinstance(value, (str, bytes)) else ""


def _as_list(value: object) -> list:
    return list(value) if isinstance(value, (list, tuple)) else []


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
        if not created and _same_death(dead_letter, death):
            # This very death again: the consumer died between its commit and its ack, or a
            # park followed a commit whose answer was lost. Counted once, and nothing reacts.
            logger.info("dead letter %s already recorded", death.message_id)
            return dead_letter
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
        if dead_letter.status == DeadLetter.Status.NEW:
            transaction.on_commit(lambda: report(dead_letter), robust=True)
    logger.warning(
        "dead letter recorded: message=%s task=%s queue=%s reason=%s subject=%s count=%s status=%s",
        death.message_id,
        death.task_name,
        death.queue,
        death.reason,
        death.subject_id,
        dead_letter.death_count,
        dead_letter.status,
    )
    return dead_letter


def report(dead_letter: DeadLetter) -> None:
    """Report a dead letter an operator must act on as an error to Sentry (when it is on).

    Its death is the one place every failed message shows: to the Celery integration a
    rejected message is control flow, not an error, and a message that kills its worker
    never reaches it. Grouped by task, queue and reason; the ids are tags, to search by.
    """
    errorreports.capture_message(
        f"dead letter: {dead_letter.task_name or 'unknown task'} from "
        f"{dead_letter.queue or 'unknown queue'} ({dead_letter.reason})",
        tags={
            "message_id": dead_letter.message_id[:200],
            "task": dead_letter.task_name,
            "queue": dead_letter.queue,
            "reason": dead_letter.reason,
            "subject_id": dead_letter.subject_id,
            "status": dead_letter.status,
        },
        extras={"dead_letter_id": dead_letter.pk, "death_count": dead_letter.death_count},
        fingerprint=["dead-letter", dead_letter.task_name, dead_letter.queue, dead_letter.reason],
    )


def _same_death(dead_letter: DeadLetter, death: Death) -> bool:
    mark = death_mark(death.headers)
    return mark is not None and death_mark(dead_letter.headers) == mark


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
        if task is None or kwargs is None or _uuid_or_none(dead_letter.message_id) is None:
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
        "subject_id": death.subject_id,
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


def _subject_of(task_name: str, kwargs: dict | None) -> uuid.UUID | None:
    """What the message was about, as its task says; None for a task this system lacks."""
    task = _task_named(task_name)
    subject_of = getattr(task, "subject_of", None)
    return _uuid_or_none(subject_of(kwargs)) if subject_of and kwargs is not None else None


def _uuid_or_none(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value is not None else None
    except ValueError:
        return None


def _storable_text(value: str | bytes | bytearray | memoryview) -> str:
    """Text PostgreSQL stores: UTF-8 (odd bytes and lone surrogates escaped), NUL escaped."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value).decode("utf-8", errors="backslashreplace")
    else:
        value = value.encode("utf-8", errors="backslashreplace").decode("utf-8")
    return value.replace("\x00", "\\x00")  # neither text columns nor JSON hold NUL


def _death_headers_first(headers: dict) -> dict:
    """The death headers first, so a size bound cuts other headers before them."""
    first = {k: v for k, v in headers.items() if str(k).startswith(DEATH_HEADER_PREFIXES)}
    return first | {k: v for k, v in headers.items() if k not in first}


class _Budget:
    """Characters left for one message's stored headers (or properties)."""

    def __init__(self, chars: int) -> None:
        self.left = chars

    def take(self, text: str, limit: int = MAX_VALUE_CHARS) -> str:
        kept = text[: max(min(self.left, limit), 0)]
        self.left -= len(kept) + 1
        return kept if len(kept) == len(text) else kept + f"...[{len(text) - len(kept)} cut]"


def _bounded(value: Any, chars: int) -> Any:
    """JSON-safe and of bounded size: at most about `chars` characters, MAX_DEPTH deep."""
    return _json_safe(value, budget=_Budget(chars))


def _json_safe(value: Any, budget: _Budget | None = None, depth: int = 0) -> Any:
    """AMQP tables hold datetimes, bytes, decimals and nested tables; JSON holds less.

    Every text is cut at MAX_VALUE_CHARS (keys at 200); with a budget, text is also cut once
    the budget is spent, and a table or array stops there with a note of what was left off.
    Nesting deeper than MAX_DEPTH is replaced by a note.
    """
    budget = budget or _Budget(10**12)
    if isinstance(value, (dict, list, tuple)) and depth >= MAX_DEPTH:
        return budget.take(f"[{type(value).__name__} nested deeper than {MAX_DEPTH}: cut]")
    if isinstance(value, dict):
        safe = {}
        for index, (key, item) in enumerate(value.items()):
            if budget.left <= 0:
                safe["..."] = f"{len(value) - index} more cut"
                break
            safe[budget.take(_text(key, 10**6), 200)] = _json_safe(item, budget, depth + 1)
        return safe
    if isinstance(value, (list, tuple)):
        safe = []
        for index, item in enumerate(value):
            if budget.left <= 0:
                safe.append(f"...{len(value) - index} more cut")
                break
            safe.append(_json_safe(item, budget, depth + 1))
        return safe
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        budget.take(str(value))
        return value
    if isinstance(value, datetime):
        return budget.take(value.isoformat())
    if isinstance(value, (str, bytes, bytearray, memoryview)):
        return budget.take(_storable_text(value))
    return budget.take(_storable_text(str(value)))  # Decimal, NaN and infinities, others
