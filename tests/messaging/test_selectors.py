"""Reads for operators: queue depths by passive declare (real RabbitMQ), new dead letters."""

import socket
import time
import uuid

import pytest
from amqp.exceptions import NotFound
from django.conf import settings
from kombu import Connection, Queue

from messaging import selectors
from messaging.models import DeadLetter

from ..factories import DeadLetterFactory


@pytest.fixture
def scratch_queue():
    """A queue of our own on the test broker, holding two messages; deleted afterwards."""
    name = f"test-depth-{uuid.uuid4()}"
    # Confirmed publishes: both messages are in the queue before the test reads its depth.
    with Connection(
        settings.CELERY_BROKER_URL, transport_options={"confirm_publish": True}
    ) as connection:
        queue = Queue(name, auto_delete=False).bind(connection.default_channel)
        queue.declare()
        producer = connection.Producer()
        for n in range(2):
            producer.publish({"n": n}, routing_key=name, exchange="", retry=False)
        yield name
        queue.delete()


@pytest.mark.broker
def test_queue_depths_reads_ready_messages_and_never_creates_a_queue(scratch_queue):
    missing = f"test-missing-{uuid.uuid4()}"

    depths = selectors.queue_depths(names=[scratch_queue, missing])

    assert depths == [
        selectors.QueueDepth(name=scratch_queue, messages=2, consumers=0),
        selectors.QueueDepth(name=missing, messages=None, consumers=None),
    ]
    with Connection(settings.CELERY_BROKER_URL) as connection, pytest.raises(NotFound):
        connection.default_channel.queue_declare(queue=missing, passive=True)


def test_queue_depths_are_unavailable_when_the_broker_refuses_connections():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    depths = selectors.queue_depths(url=f"amqp://guest:guest@127.0.0.1:{port}//", timeout=1)

    assert [(d.name, d.available) for d in depths] == [
        ("fraud", False),
        ("billing", False),
        ("maintenance", False),
        ("webhooks", False),
        ("dead_letter", False),
        ("dead_letter_parked", False),
    ]


def test_queue_depths_give_up_on_a_broker_that_does_not_answer_within_the_timeout():
    with socket.socket() as silent:  # accepts connections, never speaks AMQP
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"amqp://guest:guest@127.0.0.1:{silent.getsockname()[1]}//"
        started = time.monotonic()

        depths = selectors.queue_depths(url=url, timeout=0.5)

        assert time.monotonic() - started < 2
    assert not any(d.available for d in depths)


@pytest.mark.django_db
def test_new_dead_letters_counts_and_lists_only_new_ones_newest_first(
    django_assert_num_queries,
):
    older, newer = DeadLetterFactory(), DeadLetterFactory()
    DeadLetter.objects.filter(pk=older.pk).update(
        last_death_at=newer.last_death_at.replace(year=2020)
    )
    DeadLetterFactory(status=DeadLetter.Status.REPLAYED)
    DeadLetterFactory(status=DeadLetter.Status.DISCARDED)

    with django_assert_num_queries(2):  # the count, the latest
        new = selectors.new_dead_letters(limit=1)

    assert new.count == 2
    assert [letter.pk for letter in new.latest] == [newer.pk]
