"""A dead letter an operator must act on is reported to Sentry once, after it is recorded."""

import pytest

from messaging import deadletters
from messaging.models import DeadLetter
from ordering.state_machine import OrderStatus

from ..factories import OrderFactory
from ..messaging.test_deadletters import celery_message

pytestmark = pytest.mark.django_db


def record(message: dict) -> DeadLetter:
    return deadletters.record(deadletters.read_death(**message))


def test_a_new_dead_letter_is_reported_once_with_its_ids_after_its_transaction_commits(
    sentry, django_capture_on_commit_callbacks
):
    order = OrderFactory(status=OrderStatus.PENDING)
    message = celery_message(order_id=order.id, task="fraud.screen_order", queue="fraud")

    with django_capture_on_commit_callbacks() as callbacks:
        dead_letter = record(message)
        assert sentry.events == []  # nothing before the commit
    for callback in callbacks:
        callback()

    assert dead_letter.status == DeadLetter.Status.NEW
    [event] = sentry.events
    assert event["level"] == "error"
    assert event["tags"] == {
        "message_id": dead_letter.message_id,
        "task": "fraud.screen_order",
        "queue": "fraud",
        "reason": "rejected",
        "subject_id": str(order.id),
        "status": "NEW",
    }
    assert event["extra"] | {"sys.argv": None} == {
        "dead_letter_id": dead_letter.pk,
        "death_count": 1,
        "sys.argv": None,  # the SDK's own
    }
    assert event["fingerprint"] == ["dead-letter", "fraud.screen_order", "fraud", "rejected"]


def test_the_same_death_recorded_twice_is_reported_once(sentry, django_capture_on_commit_callbacks):
    message = celery_message(order_id=OrderFactory(status=OrderStatus.PENDING).id)

    with django_capture_on_commit_callbacks(execute=True):
        record(message)
    with django_capture_on_commit_callbacks(execute=True):
        again = record(message)  # the consumer died between its commit and its ack

    assert again.death_count == 1
    assert len(sentry.events) == 1


def test_a_stale_dead_letter_is_not_reported(sentry, django_capture_on_commit_callbacks):
    order = OrderFactory(status=OrderStatus.PROCESSED)  # its step was done by another copy

    with django_capture_on_commit_callbacks(execute=True):
        dead_letter = record(celery_message(order_id=order.id, task="fraud.screen_order"))

    assert dead_letter.status == DeadLetter.Status.STALE
    assert sentry.events == []


def test_without_sentry_a_dead_letter_is_recorded_and_nothing_is_reported(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        dead_letter = record(celery_message(order_id=OrderFactory().id))

    assert dead_letter.status == DeadLetter.Status.NEW
