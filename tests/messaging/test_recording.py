"""record() on the real database: all or nothing, and every death counted once.

The dead letter's row and what its task does to the order (fail_step) commit together: a
failure between them leaves neither, and the redelivery that follows records both. Two
recordings of one message at once (two dead-letter consumers, or a redelivery racing the
first delivery) each on their own connection, as in production.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta

import pytest
from django.db import OperationalError, connection, transaction

from messaging import deadletters
from messaging.models import DeadLetter
from ordering.models import Order
from ordering.pipeline import OrderStepTask
from ordering.state_machine import OrderStatus

from ..factories import OrderFactory
from .test_deadletters import celery_message

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

FAILED = OrderStatus.FAILED


def failures_of(order: Order) -> int:
    return order.events.filter(to_status=FAILED).count()


# All or nothing ------------------------------------------------------------------------------


@contextmanager
def order_locked_elsewhere(order: Order) -> Iterator[None]:
    """Another transaction holds the order's row lock (a step applying its outcome, say),
    while the recording connection gives up waiting for a lock after a moment."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                Order.objects.select_for_update().get(pk=order.pk)
                locked.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(timeout=10)
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '200ms'")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
        release.set()
        holder.join()


class ProcessDied(Exception):
    """Stands for the dead-letter consumer dying mid-transaction: nothing after runs."""


def test_when_failing_the_order_fails_no_dead_letter_is_recorded_until_the_redelivery():
    order = OrderFactory()
    message = celery_message(order_id=order.id)

    with order_locked_elsewhere(order), pytest.raises(OperationalError, match="lock timeout"):
        deadletters.record(deadletters.read_death(**message))

    # Neither half: no row waiting for a replay that would be refused (the order is not FAILED).
    assert not DeadLetter.objects.exists()
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING

    deadletters.record(deadletters.read_death(**message))  # the broker delivers it again

    recorded = DeadLetter.objects.get()
    assert (recorded.status, recorded.death_count) == (DeadLetter.Status.NEW, 1)
    order = Order.objects.get(pk=order.pk)
    assert (order.status, order.failed_from, failures_of(order)) == (
        FAILED,
        OrderStatus.PENDING,
        1,
    )


def test_a_consumer_dying_after_failing_the_order_leaves_the_order_as_it_was(monkeypatch):
    """Without the row, a FAILED order would have no way forward: nothing to replay."""
    order = OrderFactory()
    message = celery_message(order_id=order.id)
    fail_step = OrderStepTask.on_dead_letter

    def fail_step_then_die(task, **kwargs):
        fail_step(task, **kwargs)
        raise ProcessDied

    with monkeypatch.context() as dying, pytest.raises(ProcessDied):
        dying.setattr(OrderStepTask, "on_dead_letter", fail_step_then_die)
        deadletters.record(deadletters.read_death(**message))

    assert not DeadLetter.objects.exists()
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING

    deadletters.record(deadletters.read_death(**message))  # the broker delivers it again

    assert DeadLetter.objects.get().status == DeadLetter.Status.NEW
    order = Order.objects.get(pk=order.pk)
    assert (order.status, failures_of(order)) == (FAILED, 1)


# Two at once ---------------------------------------------------------------------------------


class Rendezvous:
    """Holds each recording inside its transaction, just before its task reacts, until the
    other one gets there too or `patience` runs out. Where the row lock works the other one
    is waiting on it and never gets there, so each waits out its patience alone; without
    the lock both read the row before either writes it."""

    def __init__(self, patience: float = 2.0) -> None:
        self.barrier = threading.Barrier(2, timeout=patience)

    def wait(self) -> None:
        with suppress(threading.BrokenBarrierError):
            self.barrier.wait()


@pytest.fixture
def rendezvous(monkeypatch) -> Rendezvous:
    meeting = Rendezvous()
    react = OrderStepTask.on_dead_letter

    def react_after_meeting(task, **kwargs):
        meeting.wait()
        return react(task, **kwargs)

    monkeypatch.setattr(OrderStepTask, "on_dead_letter", react_after_meeting)
    return meeting


def record_at_once(*messages: dict) -> list[BaseException]:
    """Record each message on a thread (a database connection) of its own, all at once."""
    deaths = [deadletters.read_death(**message) for message in messages]
    errors: list[BaseException] = []

    def record(death) -> None:
        try:
            deadletters.record(death)
        except BaseException as error:  # reported to the test, not lost with the thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=record, args=(death,)) for death in deaths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return errors


def later(message: dict, seconds: int) -> dict:
    death = message["headers"]["x-death"][0]
    moved = {**death, "time": death["time"] + timedelta(seconds=seconds)}
    return {**message, "headers": {**message["headers"], "x-death": [moved]}}


def test_two_new_deaths_of_a_recorded_message_recorded_at_once_are_both_counted(rendezvous):
    order = OrderFactory()
    message = celery_message(order_id=order.id)
    deadletters.record(deadletters.read_death(**message))

    errors = record_at_once(later(message, 30), later(message, 60))

    assert errors == []
    recorded = DeadLetter.objects.get()
    assert (recorded.death_count, recorded.status) == (3, DeadLetter.Status.NEW)
    assert failures_of(Order.objects.get(pk=order.pk)) == 1


def test_the_same_first_death_recorded_twice_at_once_is_one_row_counted_once(rendezvous):
    """The broker handed a copy to a second consumer before the first one acked."""
    order = OrderFactory()
    message = celery_message(order_id=order.id)

    errors = record_at_once(message, message)

    assert errors == []
    recorded = DeadLetter.objects.get()
    assert (recorded.death_count, recorded.status) == (1, DeadLetter.Status.NEW)
    assert failures_of(Order.objects.get(pk=order.pk)) == 1


def test_two_first_deaths_recorded_at_once_are_one_row_counted_twice(rendezvous):
    order = OrderFactory()
    message = celery_message(order_id=order.id)

    errors = record_at_once(message, later(message, 60))

    assert errors == []
    recorded = DeadLetter.objects.get()
    assert (recorded.death_count, recorded.status) == (2, DeadLetter.Status.NEW)
    assert failures_of(Order.objects.get(pk=order.pk)) == 1
