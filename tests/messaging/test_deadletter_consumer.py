"""The dead-letter consumer's handling of one message: record and ack, retry, or park.

No broker: the message is a stand-in with ack/requeue, and parking publishes to a recorder.
The real broker and process are in tests/integration/test_dead_letter_parking.py.
"""

from datetime import UTC, datetime

import pytest
from amqp.exceptions import MessageNacked
from django.db import OperationalError as DatabaseUnavailable

from messaging import deadletter_consumer, deadletters
from messaging.models import DeadLetter
from ordering.models import Order
from ordering.state_machine import OrderStatus

from ..factories import OrderFactory
from .test_deadletters import celery_message


class DeliveredMessage:
    """Enough of a kombu message for DeadLetterConsumer.on_message."""

    def __init__(self, *, body, headers, properties, content_encoding=None) -> None:
        self.body, self.headers, self.properties = body, headers, properties
        self.content_encoding = content_encoding
        self.outcome = "unsettled"

    def ack(self) -> None:
        self.outcome = "acked"

    def requeue(self) -> None:
        self.outcome = "requeued"


class ParkingRecorder:
    """Stands in for parking.republish; fails like a broker that nacks when `error` is set."""

    def __init__(self) -> None:
        self.parked: list[dict] = []
        self.error: BaseException | None = None

    def __call__(self, channel, *, body, properties, headers, queue) -> None:
        if self.error is not None:
            raise self.error
        self.parked.append(
            {"body": body, "properties": properties, "headers": headers, "queue": queue}
        )


class OpenChannel:
    is_open = True


@pytest.fixture
def parking(monkeypatch) -> ParkingRecorder:
    recorder = ParkingRecorder()
    monkeypatch.setattr(deadletter_consumer, "republish", recorder)
    return recorder


@pytest.fixture
def pauses(monkeypatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(
        deadletter_consumer.DeadLetterConsumer, "pause", lambda _, s: slept.append(s)
    )
    return slept


@pytest.fixture
def consumer(monkeypatch, parking, pauses, settings):
    # Closing "old" connections would close the test's own transaction.
    monkeypatch.setattr(deadletter_consumer, "close_old_connections", lambda: None)
    settings.DEAD_LETTER_RECORD_ATTEMPTS = 4
    settings.DEAD_LETTER_RETRY_BASE_SECONDS = 0.5
    settings.DEAD_LETTER_RETRY_MAX_SECONDS = 1.5
    consumer = deadletter_consumer.DeadLetterConsumer(connection=None)
    consumer.park_channel = OpenChannel()
    return consumer


class FlakyDatabase:
    """Stands in for record(): the database is down for the first `failures` calls."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self, death):
        self.calls += 1
        if self.calls <= self.failures:
            raise DatabaseUnavailable("the database system is shutting down")
        return deadletters.record(death)


@pytest.mark.django_db
def test_the_consumer_records_a_dead_letter_then_acks_it(consumer):
    order = OrderFactory()
    message = DeliveredMessage(**celery_message(order_id=order.id))

    consumer.on_message(message)

    assert message.outcome == "acked"
    assert bytes(DeadLetter.objects.get().body) == message.body
    assert Order.objects.get(pk=order.id).status == OrderStatus.FAILED


@pytest.mark.django_db
def test_the_consumer_records_a_body_the_transport_decoded_as_the_original_bytes(consumer):
    raw = celery_message()
    raw["body"] = raw["body"][:-1] + ', "é"]'.encode()  # not ASCII
    message = DeliveredMessage(
        **(raw | {"body": raw["body"].decode("utf-8")}), content_encoding="utf-8"
    )

    consumer.on_message(message)

    assert message.outcome == "acked"
    assert bytes(DeadLetter.objects.get().body) == raw["body"]


@pytest.mark.django_db
def test_a_database_that_comes_back_within_the_retries_is_recorded_after_growing_pauses(
    consumer, monkeypatch, parking, pauses
):
    monkeypatch.setattr(deadletter_consumer, "record", FlakyDatabase(failures=3))
    message = DeliveredMessage(**celery_message())

    consumer.on_message(message)

    assert message.outcome == "acked"
    assert DeadLetter.objects.count() == 1
    assert pauses == [0.5, 1.0, 1.5]  # doubling, capped at DEAD_LETTER_RETRY_MAX_SECONDS
    assert parking.parked == []


@pytest.mark.django_db
def test_a_dead_letter_that_cannot_be_recorded_is_parked_unchanged_then_acked(
    consumer, monkeypatch, parking, pauses
):
    database = FlakyDatabase(failures=1000)
    monkeypatch.setattr(deadletter_consumer, "record", database)
    message = DeliveredMessage(**celery_message())

    consumer.on_message(message)

    assert database.calls == 4 and len(pauses) == 3  # the retries are bounded
    assert message.outcome == "acked"
    assert parking.parked == [
        {
            "body": message.body,
            "properties": message.properties,
            "headers": message.headers,
            "queue": "dead_letter_parked",
        }
    ]
    assert not DeadLetter.objects.exists()


@pytest.mark.django_db
def test_after_a_park_the_next_one_gets_one_try_until_the_database_answers_again(
    consumer, monkeypatch, parking, pauses
):
    database = FlakyDatabase(failures=5)
    monkeypatch.setattr(deadletter_consumer, "record", database)
    first, second, third, fourth = (DeliveredMessage(**celery_message()) for _ in range(4))

    consumer.on_message(first)  # 4 tries, parked
    consumer.on_message(second)  # 1 try, parked: the backlog does not crawl
    consumer.on_message(third)  # the database is back: recorded
    consumer.on_message(fourth)

    assert len(parking.parked) == 2
    assert database.calls == 7
    assert [m.outcome for m in (first, second, third, fourth)] == ["acked"] * 4
    assert DeadLetter.objects.count() == 2


@pytest.mark.parametrize(
    "error", [MessageNacked(), TimeoutError("no confirm"), OSError(111, "refused")]
)
@pytest.mark.django_db
def test_a_park_the_broker_does_not_confirm_leaves_the_message_in_dead_letter(
    consumer, monkeypatch, parking, error
):
    monkeypatch.setattr(deadletter_consumer, "record", FlakyDatabase(failures=1000))
    parking.error = error
    message = DeliveredMessage(**celery_message())

    consumer.on_message(message)

    assert message.outcome == "requeued"  # never acked without a confirmed copy


@pytest.mark.django_db
def test_a_redelivered_copy_of_a_recorded_death_is_acked_and_changes_nothing(consumer, monkeypatch):
    """The consumer died after the commit, before the ack; meanwhile the order was replayed."""
    order = OrderFactory()
    raw = celery_message(order_id=order.id)
    consumer.on_message(DeliveredMessage(**raw))
    row = DeadLetter.objects.get()
    deadletters.replay(dead_letter_id=row.pk, actor=None)  # the order resumes
    raw["headers"]["x-delivery-count"] += 1
    again = DeliveredMessage(**raw)

    consumer.on_message(again)

    row.refresh_from_db()
    assert again.outcome == "acked"
    assert (row.death_count, row.status) == (1, DeadLetter.Status.REPLAYED)
    assert Order.objects.get(pk=order.id).status == OrderStatus.PENDING


@pytest.mark.django_db
def test_a_second_death_of_the_same_message_is_counted(consumer):
    raw = celery_message()
    consumer.on_message(DeliveredMessage(**raw))
    raw["headers"]["x-death"][0]["time"] = datetime(2025, 3, 1, 13, 0, tzinfo=UTC)

    consumer.on_message(DeliveredMessage(**raw))

    assert DeadLetter.objects.get().death_count == 2


@pytest.mark.django_db
def test_an_id_with_a_nul_byte_is_recorded_not_retried(consumer, parking, pauses):
    message = DeliveredMessage(**celery_message(message_id="bad\x00id"))

    consumer.on_message(message)

    assert message.outcome == "acked"
    assert (pauses, parking.parked) == ([], [])
    assert DeadLetter.objects.get().message_id == "bad\\x00id"


@pytest.mark.django_db
@pytest.mark.parametrize("length", [255, 256, 100_000])
def test_an_id_of_any_length_is_recorded_at_once_not_retried_or_parked(
    consumer, parking, pauses, length
):
    message = DeliveredMessage(**celery_message(message_id="i" * length))

    consumer.on_message(message)

    assert message.outcome == "acked"
    assert (pauses, parking.parked) == ([], [])
    assert DeadLetter.objects.count() == 1


def test_the_pause_keeps_heartbeats_going(monkeypatch):
    beats = []
    monkeypatch.setattr(deadletter_consumer.time, "sleep", lambda s: None)
    clock = iter(range(0, 100))
    monkeypatch.setattr(deadletter_consumer.time, "monotonic", lambda: next(clock))
    consumer = deadletter_consumer.DeadLetterConsumer(connection=None)
    consumer.live_connection = type("Live", (), {"heartbeat_check": lambda self: beats.append(1)})()

    consumer.pause(5)

    assert len(beats) >= 4
