"""An order's timeline for operators: its history and every message of it, in time order."""

import pytest
from django.utils import timezone
from django_celery_results.models import TaskResult

from messaging import deadletters
from messaging.models import DeadLetter, OutboxMessage
from ordering import services, timeline
from ordering.errors import OrderNotFound
from ordering.models import Order
from ordering.state_machine import OrderStatus

from ..factories import OrderFactory, UserFactory
from ..messaging.test_deadletters import celery_message

pytestmark = pytest.mark.django_db

TRACEBACK = (
    'Traceback (most recent call last):\n  File "fraud/tasks.py", line 9\n'
    "fraud.errors.RulesUnavailable: the rules service did not answer\n"
)


def dead_lettered_and_replayed_order(*, replayed_by=None) -> tuple[Order, OutboxMessage]:
    """Through the services: placed, published, failed for good (a stored result, a dead
    letter, FAILED), replayed by `replayed_by`, and published again."""
    order = services.create_order(
        buyer=UserFactory(),
        product_name="Teapot",
        quantity=1,
        unit_price_minor=1250,
        currency="EUR",
    ).order
    message = OutboxMessage.objects.get(kwargs__order_id=str(order.pk))
    OutboxMessage.objects.filter(pk=message.pk).update(published_at=timezone.now())
    TaskResult.objects.create(
        task_id=str(message.pk),
        task_name="fraud.screen_order",
        status="FAILURE",
        traceback=TRACEBACK,
        date_done=timezone.now(),
    )
    dead_letter = deadletters.record(
        deadletters.read_death(**celery_message(order_id=order.pk, message_id=str(message.pk)))
    )
    assert Order.objects.get(pk=order.pk).status == OrderStatus.FAILED
    deadletters.replay(dead_letter_id=dead_letter.pk, actor=replayed_by)
    OutboxMessage.objects.filter(pk=message.pk).update(published_at=timezone.now())
    return order, message


def test_the_timeline_puts_events_messages_results_deaths_and_replays_in_time_order():
    operator = UserFactory(username="night-shift")
    order, message = dead_lettered_and_replayed_order(replayed_by=operator)

    found = timeline.order_timeline(order_id=order.pk)

    assert [(e.kind, e.title) for e in found.entries] == [
        ("event", "placed → PENDING"),
        ("message", "fraud.screen_order written to the outbox"),
        ("result", "fraud.screen_order result: FAILURE"),
        ("death", "fraud.screen_order dead-lettered from fraud"),
        ("event", "PENDING → FAILED"),
        ("event", "FAILED → PENDING"),
        ("replay", "Replayed by night-shift"),
        ("published", "fraud.screen_order published (confirmed by the broker)"),
    ]
    result = found.entries[2]
    assert result.detail == "fraud.errors.RulesUnavailable: the rules service did not answer"
    assert {e.message_id for e in found.entries if e.kind != "event"} == {str(message.pk)}
    dead_letter = DeadLetter.objects.get()
    assert found.entries[3].dead_letter_id == dead_letter.pk
    assert "reason rejected; dead letter now REPLAYED" in found.entries[3].detail
    [only] = found.messages
    assert (only.id, only.outbox, only.dead_letter) == (str(message.pk), message, dead_letter)
    assert only.result.status == "FAILURE"


def test_a_replay_from_the_command_line_shows_who_as_nobody():
    order, _ = dead_lettered_and_replayed_order(replayed_by=None)

    found = timeline.order_timeline(order_id=order.pk)

    [replay] = [e for e in found.entries if e.kind == "replay"]
    assert replay.title == "Replayed by the command line (no user)"


def test_the_timeline_leaves_out_other_orders_messages():
    order, _ = dead_lettered_and_replayed_order()
    dead_lettered_and_replayed_order()
    OrderFactory()

    found = timeline.order_timeline(order_id=order.pk)

    assert len(found.messages) == 1
    assert len([e for e in found.entries if e.kind == "death"]) == 1


def test_the_timeline_costs_6_queries_however_long_the_history(django_assert_num_queries):
    order, _ = dead_lettered_and_replayed_order(replayed_by=UserFactory())

    # order; events; outbox rows; dead letters with who acted; task results; admin log
    with django_assert_num_queries(6):
        timeline.order_timeline(order_id=order.pk)


def test_an_unknown_order_has_no_timeline():
    with pytest.raises(OrderNotFound):
        timeline.order_timeline(order_id=OrderFactory.build().pk)
