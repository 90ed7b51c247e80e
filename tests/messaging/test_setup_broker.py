"""The release's broker step on a real RabbitMQ: an older release's work queue is named."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from chaos.broker import connect
from messaging import topology

pytestmark = pytest.mark.broker

QUEUE = "upgrade_check"  # a work queue of this test's own, beside the suite's


@pytest.fixture
def old_work_queue(settings, monkeypatch):
    """`QUEUE` as a release with a delivery limit of 5 declared it."""
    monkeypatch.setattr(topology, "WORK_QUEUES", (QUEUE,))
    settings.BROKER_DELIVERY_LIMIT = 5
    with connect(settings.CELERY_BROKER_URL) as connection:
        topology.work_queue(QUEUE).bind(connection.channel()).declare()
    settings.BROKER_DELIVERY_LIMIT = 20
    yield
    with connect(settings.CELERY_BROKER_URL) as connection:
        connection.default_channel.queue_delete(QUEUE)
        connection.default_channel.exchange_delete(QUEUE)


def test_a_work_queue_with_an_older_delivery_limit_fails_the_release_saying_what_to_do(
    old_work_queue,
):
    with pytest.raises(CommandError) as refused:
        call_command("setup_broker", stdout=io.StringIO())

    message = str(refused.value)
    assert "inequivalent arg 'x-delivery-limit'" in message
    assert "set BROKER_DELIVERY_LIMIT to the queue's current value" in message


def test_the_same_release_declares_it_again_without_complaint(settings, monkeypatch):
    monkeypatch.setattr(topology, "WORK_QUEUES", (QUEUE,))
    out = io.StringIO()
    try:
        call_command("setup_broker", stdout=out)
        call_command("setup_broker", stdout=out)
    finally:
        with connect(settings.CELERY_BROKER_URL) as connection:
            connection.default_channel.queue_delete(QUEUE)
            connection.default_channel.exchange_delete(QUEUE)
    assert out.getvalue().count("broker topology declared") == 2
