"""The pipeline's state as /metrics reports it, read from rows made here."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from prometheus_client import CollectorRegistry

from messaging.models import DeadLetter, OutboxMessage
from monitoring.collectors import PipelineStateCollector
from ordering.models import Order
from ordering.state_machine import OrderStatus

from ..factories import DeadLetterFactory, OrderFactory, OutboxMessageFactory


def scrape() -> dict[tuple[str, tuple], float]:
    registry = CollectorRegistry()
    registry.register(PipelineStateCollector())
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
    }


def long_unchanged(order: Order) -> Order:
    Order.objects.filter(pk=order.pk).update(updated_at=timezone.now() - timedelta(hours=2))
    return order


@pytest.mark.django_db
def test_the_state_gauges_count_the_rows_in_the_database():
    stuck = long_unchanged(OrderFactory())  # PENDING, no message, no dead letter
    waiting = long_unchanged(OrderFactory())  # PENDING, its message still in the outbox
    OutboxMessageFactory(kwargs={"order_id": str(waiting.id)})
    OrderFactory()  # PENDING, changed just now: not (yet) stuck
    OrderFactory(status=OrderStatus.PROCESSED)
    old = OutboxMessageFactory()
    OutboxMessage.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(seconds=120)
    )
    OutboxMessageFactory(published_at=timezone.now())  # published: not counted
    OutboxMessageFactory(task_name="webhooks.deliver", lane="webhooks")
    DeadLetterFactory()  # NEW, its order FAILED at the step
    DeadLetterFactory(status=DeadLetter.Status.DISCARDED)

    state = scrape()

    assert state[("orderflow_state_database_up", ())] == 1
    assert state[("orderflow_orders", (("status", "PENDING"),))] == 3
    assert state[("orderflow_orders", (("status", "PROCESSED"),))] == 1
    assert state[("orderflow_orders", (("status", "FAILED"),))] == 2
    assert state[("orderflow_orders", (("status", "CANCELED"),))] == 0
    main, webhooks = (("lane", "main"),), (("lane", "webhooks"),)
    assert state[("orderflow_outbox_unpublished_messages", main)] == 2
    assert 120 <= state[("orderflow_outbox_oldest_unpublished_age_seconds", main)] < 180
    assert state[("orderflow_outbox_unpublished_messages", webhooks)] == 1
    assert state[("orderflow_outbox_oldest_unpublished_age_seconds", webhooks)] < 60
    assert state[("orderflow_dead_letters_new", ())] == 1
    # The FAILED order of the discarded dead letter was changed just now: not stuck yet.
    assert state[("orderflow_orders_without_a_way_forward", ())] == 1
    assert stuck.status == OrderStatus.PENDING


@pytest.mark.django_db
def test_an_empty_outbox_has_an_oldest_age_of_zero():
    state = scrape()

    for lane in ("main", "webhooks"):  # every lane, so an alert on it has a series
        assert state[("orderflow_outbox_unpublished_messages", (("lane", lane),))] == 0
        assert state[("orderflow_outbox_oldest_unpublished_age_seconds", (("lane", lane),))] == 0


@pytest.mark.django_db
def test_the_state_costs_a_few_queries_per_scrape(django_assert_max_num_queries):
    # The four reads, the statement timeout, and a savepoint (opened, released) in a test.
    with django_assert_max_num_queries(7):
        scrape()


@pytest.mark.django_db(transaction=True)
def test_a_database_that_refuses_connections_is_reported_not_raised(monkeypatch, closed_port):
    connection.close()
    monkeypatch.setitem(connection.settings_dict, "PORT", closed_port)
    monkeypatch.setitem(connection.settings_dict, "HOST", "127.0.0.1")

    state = scrape()

    assert state == {("orderflow_state_database_up", ()): 0}
    connection.close()  # the next test connects to the real database again
