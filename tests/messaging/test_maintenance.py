"""Celery beat's housekeeping: what it schedules, where it goes, and what it must not delete."""

import tempfile
from datetime import timedelta

import pytest
from celery.beat import PersistentScheduler
from django.utils import timezone
from django_celery_results.models import TaskResult

from config.celery import app
from messaging.models import OutboxMessage
from messaging.tasks import prune_messages

from ..factories import DeadLetterFactory
from ..integration.test_procfile import procfile_line

LONG_AGO = timezone.now() - timedelta(days=30)


def beat_schedule() -> dict:
    """The entries `celery beat` runs (its default scheduler, the Procfile's): the configured
    ones plus those Celery adds by itself."""
    with tempfile.TemporaryDirectory() as directory:
        scheduler = PersistentScheduler(
            app, schedule_filename=f"{directory}/celerybeat-schedule", lazy=False
        )
        try:
            return dict(scheduler.schedule)
        finally:
            scheduler.close()


def test_beat_prunes_daily_and_sweeps_for_stuck_orders():
    tasks = {entry.task: entry for entry in beat_schedule().values()}

    assert set(tasks) == {
        "maintenance.prune_messages",
        "maintenance.prune_webhook_deliveries",
        "maintenance.sweep_stuck_orders",
    }
    daily = tasks["maintenance.prune_messages"].schedule
    assert daily.remaining_estimate(timezone.now()) <= timedelta(days=1)
    assert tasks["maintenance.prune_messages"].options["expires"] <= 24 * 3600


def test_beat_adds_no_result_cleanup_that_would_delete_what_dead_letters_need():
    # Celery adds celery.backend_cleanup (every result older than result_expires) when results
    # expire; prune_messages is what expires them, keeping open dead letters' tracebacks.
    assert "celery.backend_cleanup" not in beat_schedule()


@pytest.mark.django_db
def test_the_result_backends_own_cleanup_keeps_the_results_open_dead_letters_need():
    letter = DeadLetterFactory()
    TaskResult.objects.create(task_id=letter.message_id, status="FAILURE")
    TaskResult.objects.filter(task_id=letter.message_id).update(date_done=LONG_AGO)

    app.backend.cleanup()  # what celery.backend_cleanup runs

    assert TaskResult.objects.filter(task_id=letter.message_id).exists()


def test_every_scheduled_task_goes_to_a_queue_the_procfile_worker_consumes():
    line = procfile_line("worker").split()
    consumed = set(line[line.index("--queues") + 1].split(","))
    for entry in beat_schedule().values():
        queue = app.amqp.router.route({}, entry.task)["queue"].name
        assert queue in consumed, (entry.task, queue)
    assert procfile_line("beat").startswith("celery -A config beat")


@pytest.mark.django_db
def test_the_prune_task_keeps_message_retention_days(settings):
    settings.MESSAGE_RETENTION_DAYS = 10
    OutboxMessage.objects.create(task_name="t", kwargs={}, published_at=LONG_AGO)
    kept = OutboxMessage.objects.create(
        task_name="t", kwargs={}, published_at=timezone.now() - timedelta(days=9)
    )

    deleted = prune_messages()

    assert deleted["published outbox messages"] == 1
    assert set(OutboxMessage.objects.values_list("id", flat=True)) == {kept.id}


@pytest.mark.django_db
def test_the_prune_task_refuses_a_retention_under_a_day(settings):
    settings.MESSAGE_RETENTION_DAYS = 0.5

    with pytest.raises(ValueError, match="at least 1 day"):
        prune_messages()
