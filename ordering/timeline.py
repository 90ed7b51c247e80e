"""A selector for operators: one order's history and all its messages on one timeline.

"Where is my order?": its transitions, each message of it as the outbox, the result
backend and the dead-letter queue kept it, and who replayed or discarded what. Read by the
order's timeline page in the admin (ordering/admin.py).
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.contrib.admin.models import LogEntry
from django.db.models import Q
from django_celery_results.models import TaskResult

from messaging.models import DeadLetter, OutboxMessage

from .errors import OrderNotFound
from .models import Order, OrderEvent


@dataclass(frozen=True)
class OrderMessage:
    """One message of an order, by id, with what each part of the system kept of it."""

    id: str
    task_name: str
    outbox: OutboxMessage | None  # None once pruned (MESSAGE_RETENTION_DAYS)
    result: TaskResult | None  # failures are stored; successes only with RESULTS_STORE_SUCCESSES
    dead_letter: DeadLetter | None

    @property
    def result_summary(self) -> str:
        return traceback_summary(self.result.traceback or "") if self.result else ""


@dataclass(frozen=True)
class TimelineEntry:
    """Something that happened to an order or one of its messages, at a time.

    kind: event (a transition), message (written to the outbox), published (confirmed by the
    broker), result (a stored task result), death, replay, discard.
    """

    at: datetime
    kind: str
    title: str
    detail: str = ""
    message_id: str = ""  # the message it is about, for the links between entries
    dead_letter_id: int | None = None


@dataclass(frozen=True)
class OrderTimeline:
    order: Order
    messages: list[OrderMessage]  # in the order they were first written or seen
    entries: list[TimelineEntry]  # oldest first


def order_timeline(*, order_id: uuid.UUID) -> OrderTimeline:
    """An order's history and all its messages on one timeline, in six queries at most.

    The order, its events, its outbox rows (by `order_id` in their kwargs, or named by an
    event), its dead letters (by subject) with who acted on them, the task results of those
    message ids, and the admin's log of replays and discards. An outbox row replayed is the
    same row sent again: its `published_at` is its latest publish.
    """
    order = Order.objects.select_related("buyer").filter(pk=order_id).first()
    if order is None:
        raise OrderNotFound("No such order.", extra={"order_id": str(order_id)})
    events = list(OrderEvent.objects.filter(order=order).order_by("version"))
    named_by_events = {e.message_id for e in events if e.message_id}
    outbox_rows = list(
        OutboxMessage.objects.filter(
            Q(kwargs__order_id=str(order.pk)) | Q(pk__in=named_by_events)
        ).order_by("created_at")
    )
    dead_letters = list(
        DeadLetter.objects.filter(subject_id=order.pk)
        .select_related("acted_by")
        .defer("body", "headers", "properties")
        .order_by("first_death_at")
    )
    ids = [str(m.pk) for m in outbox_rows]
    ids += [d.message_id for d in dead_letters if d.message_id not in ids]
    ids += [str(i) for i in sorted(named_by_events, key=str) if str(i) not in ids]
    results = {r.task_id: r for r in TaskResult.objects.filter(task_id__in=ids)} if ids else {}
    actions = (
        list(
            LogEntry.objects.filter(
                content_type__app_label="messaging",
                content_type__model="deadletter",
                object_id__in=[str(d.pk) for d in dead_letters],
            )
            .select_related("user")
            .order_by("action_time")
        )
        if dead_letters
        else []
    )
    by_outbox = {str(m.pk): m for m in outbox_rows}
    by_dead_letter = {d.message_id: d for d in dead_letters}
    messages = [
        OrderMessage(
            id=i,
            task_name=(
                by_outbox[i].task_name
                if i in by_outbox
                else by_dead_letter[i].task_name
                if i in by_dead_letter
                else getattr(results.get(i), "task_name", None) or ""
            ),
            outbox=by_outbox.get(i),
            result=results.get(i),
            dead_letter=by_dead_letter.get(i),
        )
        for i in ids
    ]
    entries = [
        *(_event_entry(e) for e in events),
        *(entry for m in outbox_rows for entry in _outbox_entries(m)),
        *(_result_entry(r) for r in results.values() if r.date_done),
        *(entry for d in dead_letters for entry in _dead_letter_entries(d, actions)),
    ]
    entries.sort(key=lambda entry: entry.at)  # stable: a tie keeps the order above
    return OrderTimeline(order=order, messages=messages, entries=entries)


def _event_entry(event: OrderEvent) -> TimelineEntry:
    return TimelineEntry(
        at=event.at,
        kind="event",
        title=f"{event.from_status or 'placed'} → {event.to_status}",
        detail=f"{event.cause} (version {event.version})",
        message_id=str(event.message_id or ""),
    )


def _outbox_entries(message: OutboxMessage) -> list[TimelineEntry]:
    trouble = f"{message.attempts} failed publish attempt(s)" if message.attempts else ""
    if message.last_error:
        trouble += f"; last error: {message.last_error}"
    entries = [
        TimelineEntry(
            at=message.created_at,
            kind="message",
            title=f"{message.task_name} written to the outbox",
            detail=trouble,
            message_id=str(message.pk),
        )
    ]
    if message.published_at:
        entries.append(
            TimelineEntry(
                at=message.published_at,
                kind="published",
                title=f"{message.task_name} published (confirmed by the broker)",
                message_id=str(message.pk),
            )
        )
    return entries


def _result_entry(result: TaskResult) -> TimelineEntry:
    return TimelineEntry(
        at=result.date_done,
        kind="result",
        title=f"{result.task_name or 'task'} result: {result.status}",
        detail=traceback_summary(result.traceback or ""),
        message_id=result.task_id,
    )


def traceback_summary(traceback: str) -> str:
    """The last line of a traceback: the exception and its message."""
    lines = [line.strip() for line in traceback.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _dead_letter_entries(letter: DeadLetter, actions: list[LogEntry]) -> list[TimelineEntry]:
    common = {"message_id": letter.message_id, "dead_letter_id": letter.pk}
    entries = [
        TimelineEntry(
            at=letter.first_death_at,
            kind="death",
            title=f"{letter.task_name or 'message'} dead-lettered from {letter.queue}",
            detail=f"reason {letter.reason}; dead letter now {letter.status}",
            **common,
        )
    ]
    if letter.death_count > 1:
        entries.append(
            TimelineEntry(
                at=letter.last_death_at,
                kind="death",
                title=f"{letter.task_name or 'message'} dead-lettered again from {letter.queue}",
                detail=f"reason {letter.reason}; {letter.death_count} deaths in all",
                **common,
            )
        )
    logged = [a for a in actions if a.object_id == str(letter.pk)]
    for action in logged:
        message = action.get_change_message()
        entries.append(
            TimelineEntry(
                at=action.action_time,
                kind="discard" if message.startswith("Discarded") else "replay",
                title=f"{message} by {action.user}",
                **common,
            )
        )
    # The latest act is on the row too; one made outside the admin (manage.py deadletters,
    # with no user) has no log entry, and is shown from the row.
    if letter.acted_at and not any(a.action_time >= letter.acted_at for a in logged):
        discarded = letter.status == DeadLetter.Status.DISCARDED
        entries.append(
            TimelineEntry(
                at=letter.acted_at,
                kind="discard" if discarded else "replay",
                title=f"{'Discarded' if discarded else 'Replayed'} by "
                f"{letter.acted_by or 'the command line (no user)'}",
                detail=f"replayed {letter.replay_count} time(s) in all",
                **common,
            )
        )
    return entries
