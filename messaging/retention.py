"""How long the pipeline's bookkeeping is kept: what `manage.py prune_messages` deletes.

Published outbox rows, the consumers' records of applied messages, task results and dead
letters an operator has dealt with all grow by a row or more per message. Past a few days
none is needed: a duplicate that old finds its order past the step (the state machine makes
it a no-op), and the gateway's idempotency key still stops a second charge. Unpublished
outbox rows and NEW dead letters, with the task results that explain them, are never pruned.
"""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django_celery_results.models import TaskResult

from .models import DeadLetter, OutboxMessage, ProcessedMessage

MIN_AGE = timedelta(days=1)  # anything younger may still be in use


def prune(*, older_than: timedelta) -> dict[str, int]:
    """Delete what is older than `older_than` and no longer needed; the counts by kind."""
    if older_than < MIN_AGE:
        raise ValueError(f"keep at least {MIN_AGE.days} day: younger rows may still be in use")
    cutoff = timezone.now() - older_than
    open_dead_letters = DeadLetter.objects.filter(status=DeadLetter.Status.NEW)
    with transaction.atomic():
        deleted = {
            "published outbox messages": OutboxMessage.objects.filter(
                published_at__lt=cutoff
            ).delete()[0],
            "applied-message records": ProcessedMessage.objects.filter(
                processed_at__lt=cutoff
            ).delete()[0],
            "task results": TaskResult.objects.filter(date_done__lt=cutoff)
            .exclude(task_id__in=open_dead_letters.values("message_id"))
            .delete()[0],
            "replayed or discarded dead letters": DeadLetter.objects.exclude(
                status=DeadLetter.Status.NEW
            )
            .filter(acted_at__lt=cutoff)
            .delete()[0],
        }
    return deleted
