"""prune_messages: old bookkeeping goes; what is pending, open or recent stays."""

import uuid
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_celery_results.models import TaskResult

from messaging.models import DeadLetter, OutboxMessage, ProcessedMessage

from ..factories import DeadLetterFactory

pytestmark = pytest.mark.django_db
LONG_AGO = timezone.now() - timedelta(days=30)
YESTERDAY = timezone.now() - timedelta(days=1)


def outbox(published_at) -> OutboxMessage:
    return OutboxMessage.objects.create(
        task_name="fraud.screen_order", kwargs={}, published_at=published_at
    )


def applied(at) -> ProcessedMessage:
    record = ProcessedMessage.objects.create(consumer="fraud.screen", message_id=uuid.uuid4())
    ProcessedMessage.objects.filter(pk=record.pk).update(processed_at=at)
    return record


def result(task_id: str, at) -> TaskResult:
    row = TaskResult.objects.create(task_id=task_id, status="FAILURE")
    TaskResult.objects.filter(pk=row.pk).update(date_done=at)
    return row


def test_prune_deletes_old_bookkeeping_and_keeps_what_is_still_needed():
    old_published, recent_published = outbox(LONG_AGO), outbox(YESTERDAY)
    never_published = outbox(None)
    OutboxMessage.objects.filter(pk=never_published.pk).update(created_at=LONG_AGO)
    old_applied, recent_applied = applied(LONG_AGO), applied(YESTERDAY)
    open_letter = DeadLetterFactory()
    replayed = DeadLetterFactory(status=DeadLetter.Status.REPLAYED, acted_at=LONG_AGO)
    recently_discarded = DeadLetterFactory(status=DeadLetter.Status.DISCARDED, acted_at=YESTERDAY)
    old_result = result(str(uuid.uuid4()), LONG_AGO)
    explains_open_letter = result(open_letter.message_id, LONG_AGO)

    call_command("prune_messages", "--days", "7")

    assert set(OutboxMessage.objects.all()) == {recent_published, never_published}
    assert set(ProcessedMessage.objects.all()) == {recent_applied}
    assert set(DeadLetter.objects.all()) == {open_letter, recently_discarded}
    assert set(TaskResult.objects.all()) == {explains_open_letter}
    assert not OutboxMessage.objects.filter(pk=old_published.pk).exists()
    assert not ProcessedMessage.objects.filter(pk=old_applied.pk).exists()
    assert not DeadLetter.objects.filter(pk=replayed.pk).exists()
    assert not TaskResult.objects.filter(pk=old_result.pk).exists()


def test_prune_says_what_it_deleted(capsys):
    outbox(LONG_AGO)

    call_command("prune_messages")

    assert "1 published outbox messages deleted" in capsys.readouterr().out


def test_prune_refuses_to_delete_rows_less_than_a_day_old():
    with pytest.raises(CommandError, match="at least 1"):
        call_command("prune_messages", "--days", "0.5")
