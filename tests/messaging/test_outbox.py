"""The transactional outbox: a row with its cause, published after commit or by the relay."""

import threading
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messaging import outbox
from messaging.models import OutboxMessage
from ordering import services as order_services
from ordering.models import Order

from ..factories import OutboxMessageFactory, UserFactory
from ..ordering.test_concurrency import run_together

pytestmark = pytest.mark.django_db


class Boom(Exception):
    """The change that caused the message failed, so its transaction rolls back."""


def placed(rows: list[OutboxMessage], *, minutes_ago: list[int]) -> None:
    """Give rows distinct, known ages, oldest first as listed."""
    now = timezone.now()
    for row, age in zip(rows, minutes_ago, strict=True):
        OutboxMessage.objects.filter(pk=row.pk).update(created_at=now - timedelta(minutes=age))


def unpublished_ids() -> set[uuid.UUID]:
    return set(OutboxMessage.objects.filter(published_at__isnull=True).values_list("id", flat=True))


def create_order(buyer, *, idempotency_key: str | None = None) -> order_services.CreateResult:
    return order_services.create_order(
        buyer=buyer,
        product_name="Widget",
        quantity=2,
        unit_price_minor=500,
        currency="EUR",
        idempotency_key=idempotency_key,
    )


# --- enqueue() and the after-commit publish ------------------------------------------------


def test_enqueue_in_a_transaction_stores_the_row_unpublished(broker):
    with transaction.atomic():
        message = outbox.enqueue(task_name="fraud.screen_order", kwargs={"order_id": "42"})

    row = OutboxMessage.objects.get()
    assert (row.id, row.task_name, row.kwargs, row.headers) == (
        message.id,
        "fraud.screen_order",
        {"order_id": "42"},
        {},
    )
    assert (row.published_at, row.attempts, row.last_error) == (None, 0, "")
    assert broker.sent == []  # the test's transaction has not committed


@pytest.mark.usefixtures("publish_on_commit")
def test_enqueue_in_a_transaction_that_rolls_back_leaves_no_row(
    broker, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(Boom),
        transaction.atomic(),
    ):
        outbox.enqueue(task_name="fraud.screen_order", kwargs={"order_id": "42"})
        raise Boom

    assert not OutboxMessage.objects.exists()
    assert (callbacks, broker.sent) == ([], [])


@pytest.mark.usefixtures("publish_on_commit")
def test_after_commit_the_message_is_published_as_a_task_and_marked_published(
    broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        message = outbox.enqueue(
            task_name="billing.charge_order",
            kwargs={"order_id": "42"},
            headers={"origin": "test"},
        )
        assert broker.sent == []  # never published from inside the transaction

    assert len(callbacks) == 1
    assert broker.sent == [
        {
            "task_name": "billing.charge_order",
            "task_id": message.id,
            "kwargs": {"order_id": "42"},
            "headers": {"origin": "test"},
        }
    ]
    message.refresh_from_db()
    assert message.published_at is not None
    assert (message.attempts, message.last_error) == (0, "")


@pytest.mark.usefixtures("publish_on_commit")
def test_broker_down_after_commit_leaves_the_row_for_the_relay_with_the_error(
    broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        message = outbox.enqueue(task_name="fraud.screen_order", kwargs={"order_id": "42"})
        broker.down_for = {message.id}

    message.refresh_from_db()
    assert message.published_at is None
    assert message.attempts == 1
    assert "Connection refused" in message.last_error
    assert broker.sent == []


def test_with_publish_on_commit_off_the_row_is_left_to_the_relay(
    broker, settings, django_capture_on_commit_callbacks
):
    settings.OUTBOX_PUBLISH_ON_COMMIT = False

    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        message = outbox.enqueue(task_name="fraud.screen_order", kwargs={"order_id": "42"})

    assert (callbacks, broker.sent) == ([], [])
    assert unpublished_ids() == {message.id}


# --- publish_pending(): the relay ------------------------------------------------------------


def test_a_message_the_broker_does_not_confirm_is_kept_and_the_rest_of_its_batch_published(
    broker,
):
    first, failing, after = OutboxMessageFactory.create_batch(3)
    placed([first, failing, after], minutes_ago=[3, 2, 1])
    broker.down_for = {failing.id}

    published = outbox.publish_pending()

    # Each confirm counts on its own: one refused message keeps only itself back.
    assert published == 2
    assert broker.task_ids == [first.id, after.id]
    assert unpublished_ids() == {failing.id}
    failing.refresh_from_db()
    assert failing.attempts == 1
    assert "Connection refused" in failing.last_error
    for row in (first, after):
        row.refresh_from_db()
        assert (row.attempts, row.last_error) == (0, "")


def test_a_row_that_failed_before_is_published_once_the_broker_is_back(broker):
    row = OutboxMessageFactory()
    broker.down_for = {row.id}
    outbox.publish_pending()
    outbox.publish_pending()
    broker.down_for = set()

    assert outbox.publish_pending() == 1

    row.refresh_from_db()
    assert row.published_at is not None
    assert row.attempts == 2  # failed attempts, kept to explain the delay
    assert broker.task_ids == [row.id]


def test_publish_pending_publishes_only_unpublished_rows_oldest_first(broker):
    older, newer, done = OutboxMessageFactory.create_batch(3)
    placed([older, newer, done], minutes_ago=[5, 4, 6])
    OutboxMessage.objects.filter(pk=done.pk).update(published_at=timezone.now())

    assert outbox.publish_pending() == 2

    assert broker.task_ids == [older.id, newer.id]
    assert unpublished_ids() == set()
    assert outbox.publish_pending() == 0
    assert len(broker.sent) == 2


def test_publish_pending_sends_the_stored_task_name_kwargs_and_headers(broker):
    row = OutboxMessageFactory(
        task_name="billing.charge_order", kwargs={"order_id": "7"}, headers={"h": "v"}
    )

    outbox.publish_pending()

    assert broker.sent == [
        {
            "task_name": "billing.charge_order",
            "task_id": row.id,
            "kwargs": {"order_id": "7"},
            "headers": {"h": "v"},
        }
    ]


def test_publish_pending_publishes_only_the_given_ids(broker):
    wanted, other = OutboxMessageFactory.create_batch(2)

    assert outbox.publish_pending(ids=[wanted.id]) == 1

    assert broker.task_ids == [wanted.id]
    assert unpublished_ids() == {other.id}
    assert outbox.publish_pending(ids=[]) == 0


def test_publish_pending_publishes_only_the_given_lanes(broker):
    step = OutboxMessageFactory(task_name="billing.charge_order")
    delivery = OutboxMessageFactory(task_name="webhooks.deliver", lane="webhooks")

    assert outbox.publish_pending(lanes=["webhooks"]) == 1
    assert broker.task_ids == [delivery.id]
    assert outbox.publish_pending(lanes=["main"]) == 1
    assert broker.task_ids == [delivery.id, step.id]


def test_a_message_is_stored_in_its_tasks_lane_and_a_replay_moves_it_there():
    with transaction.atomic():
        step = outbox.enqueue(task_name="fraud.screen_order", kwargs={})
        delivery = outbox.enqueue(task_name="webhooks.deliver", kwargs={})
        (fanned_out,) = outbox.enqueue_new(
            task_name="webhooks.deliver", kwargs_by_id={uuid.uuid4(): {}}
        )
    # A webhook delivery's row written before lanes were: replayed, it goes to its lane.
    old = OutboxMessageFactory(task_name="webhooks.deliver", published_at=timezone.now())
    outbox.enqueue(task_name=old.task_name, kwargs=old.kwargs, message_id=old.id)

    lanes = dict(OutboxMessage.objects.values_list("id", "lane"))
    assert lanes == {
        step.id: "main",
        delivery.id: "webhooks",
        fanned_out.id: "webhooks",
        old.id: "webhooks",
    }


def test_publish_pending_publishes_at_most_limit_rows_the_oldest(broker):
    rows = OutboxMessageFactory.create_batch(5)
    placed(rows, minutes_ago=[5, 4, 3, 2, 1])

    assert outbox.publish_pending(limit=2) == 2

    assert broker.task_ids == [rows[0].id, rows[1].id]
    assert unpublished_ids() == {row.id for row in rows[2:]}


def test_publish_pending_with_min_age_leaves_fresh_rows_to_the_after_commit_publish(broker):
    old, fresh = OutboxMessageFactory.create_batch(2)
    placed([old], minutes_ago=[2])

    assert outbox.publish_pending(min_age=timedelta(minutes=1)) == 1

    assert broker.task_ids == [old.id]
    assert unpublished_ids() == {fresh.id}


def test_a_batch_costs_the_same_queries_as_a_single_row(broker):
    """The relay's cost per transaction does not grow with the batch (no query per row)."""
    one, *ten = OutboxMessageFactory.create_batch(11)

    with CaptureQueriesContext(connection) as single:
        assert outbox.publish_pending(ids=[one.id]) == 1
    with CaptureQueriesContext(connection) as batch:
        assert outbox.publish_pending(ids=[row.id for row in ten]) == 10

    assert len(batch) == len(single)


@pytest.mark.django_db(transaction=True)
def test_two_relays_at_once_publish_each_row_exactly_once(broker):
    rows = OutboxMessageFactory.create_batch(50)
    broker.delay = 0.002

    def relay() -> int:
        total = 0
        while published := outbox.publish_pending(limit=10):
            total += published
        return total

    results = run_together(relay, relay)

    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(results) == 50
    assert Counter(broker.task_ids) == Counter({row.id: 1 for row in rows})
    assert unpublished_ids() == set()


@pytest.mark.django_db(transaction=True)
def test_a_relay_skips_the_row_another_relay_is_publishing_instead_of_waiting(broker, monkeypatch):
    """Two relays, one row: the second passes it by while the first holds it (SKIP LOCKED)."""
    row = OutboxMessageFactory()
    publishing, finish = threading.Event(), threading.Event()

    def slow_batch(messages):
        publishing.set()
        finish.wait(timeout=10)
        return broker.send_batch(messages)

    monkeypatch.setattr(outbox, "send_messages", slow_batch)
    first = threading.Thread(target=lambda: (outbox.publish_pending(), connection.close()))
    first.start()
    assert publishing.wait(timeout=10)
    second_result: list[int] = []
    second = threading.Thread(
        target=lambda: (second_result.append(outbox.publish_pending()), connection.close())
    )
    second.start()
    second.join(timeout=3)
    second_waited = second.is_alive()
    finish.set()
    first.join(timeout=10)
    second.join(timeout=10)

    assert not second_waited, "the second relay waited for the first one's row lock"
    assert second_result == [0]
    assert broker.task_ids == [row.id]
    assert unpublished_ids() == set()


@pytest.mark.django_db(transaction=True)
def test_two_single_passes_at_once_over_the_same_rows_publish_each_once(broker):
    rows = OutboxMessageFactory.create_batch(50)
    broker.delay = 0.002

    results = run_together(outbox.publish_pending, outbox.publish_pending)

    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(results) == 50  # each skips the rows the other has locked
    assert Counter(broker.task_ids) == Counter({row.id: 1 for row in rows})
    assert unpublished_ids() == set()


# --- ordering.services.create_order() writes its message through the outbox --------------


def test_create_order_writes_exactly_one_fraud_screening_message(broker):
    order = create_order(UserFactory()).order

    [message] = OutboxMessage.objects.all()
    assert (message.task_name, message.kwargs) == (
        "fraud.screen_order",
        {"order_id": str(order.id)},
    )
    assert message.published_at is None
    assert broker.sent == []


def test_create_order_repeated_with_its_idempotency_key_writes_no_second_message():
    buyer = UserFactory()
    first = create_order(buyer, idempotency_key="k")

    again = create_order(buyer, idempotency_key="k")

    assert (first.created, again.created) == (True, False)
    assert list(OutboxMessage.objects.values_list("kwargs", flat=True)) == [
        {"order_id": str(first.order.id)}
    ]


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_with_one_idempotency_key_write_one_message():
    buyer = UserFactory()

    results = run_together(*[lambda: create_order(buyer, idempotency_key="k")] * 4)

    assert not [r for r in results if isinstance(r, Exception)], results
    [order] = Order.objects.filter(buyer=buyer)
    assert list(OutboxMessage.objects.values_list("task_name", "kwargs")) == [
        ("fraud.screen_order", {"order_id": str(order.id)})
    ]


@pytest.mark.usefixtures("publish_on_commit")
def test_create_order_publishes_its_message_after_commit(
    broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        order = create_order(UserFactory()).order

    message = OutboxMessage.objects.get()
    assert broker.sent == [
        {
            "task_name": "fraud.screen_order",
            "task_id": message.id,
            "kwargs": {"order_id": str(order.id)},
            "headers": {},
        }
    ]
    assert message.published_at is not None


@pytest.mark.usefixtures("publish_on_commit")
def test_create_order_rolled_back_leaves_neither_order_nor_message(
    broker, django_capture_on_commit_callbacks
):
    buyer = UserFactory()

    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(Boom),
        transaction.atomic(),
    ):
        create_order(buyer)
        raise Boom

    assert not Order.objects.exists()
    assert not OutboxMessage.objects.exists()
    assert broker.sent == []


def test_create_order_whose_message_cannot_be_stored_is_not_created(monkeypatch):
    def enqueue_fails(**kwargs):
        OutboxMessage.objects.create(task_name=kwargs["task_name"], kwargs=kwargs["kwargs"])
        raise Boom

    monkeypatch.setattr(outbox, "enqueue", enqueue_fails)

    with pytest.raises(Boom):
        create_order(UserFactory())

    assert not Order.objects.exists()
    assert not OutboxMessage.objects.exists()
