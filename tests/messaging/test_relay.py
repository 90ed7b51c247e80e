"""The relay woken by commits (PostgreSQL NOTIFY), publishing on a kept broker connection.

Real PostgreSQL for the wake-ups (a listener on a connection of its own, as the relay has)
and the real RabbitMQ for the publishes.
"""

import itertools
import socket
import threading
import time

import pytest
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from messaging import outbox, relay
from messaging.broker import BatchPublisher
from messaging.models import OutboxMessage

from ..factories import OutboxMessageFactory
from .test_publish_confirms import ACCEPTED, message, take_probes

pytestmark = [pytest.mark.timeout(60)]


@pytest.fixture
def wakeups(transactional_db):
    listener = relay.Wakeups()
    assert listener.wait(0) is False  # listening from here on, nothing pending
    yield listener
    listener.close()


def test_a_committed_outbox_row_wakes_the_relay_at_once(wakeups):
    OutboxMessageFactory()

    started = time.monotonic()
    assert wakeups.wait(10) is True
    assert time.monotonic() - started < 1


def test_a_row_wakes_the_relay_only_when_its_transaction_commits(wakeups):
    with transaction.atomic():
        OutboxMessageFactory()
        assert wakeups.wait(0.5) is False  # the relay could not see the row yet

    assert wakeups.wait(10) is True


def test_many_rows_of_one_commit_wake_the_relay_once(wakeups):
    with transaction.atomic():
        OutboxMessageFactory.create_batch(20)

    assert wakeups.wait(10) is True
    assert wakeups.wait(0.3) is False


def test_marking_rows_published_wakes_no_one_and_a_replay_does(wakeups):
    row = OutboxMessageFactory()
    assert wakeups.wait(10) is True

    OutboxMessage.objects.filter(pk=row.pk).update(published_at=timezone.now())
    assert wakeups.wait(0.5) is False

    outbox.enqueue(task_name=row.task_name, kwargs=row.kwargs, message_id=row.id)  # a replay
    assert wakeups.wait(10) is True


def test_a_relay_of_one_lane_sleeps_through_the_other_lanes_commits(transactional_db):
    main_only = relay.Wakeups(lanes=["main"])
    try:
        assert main_only.wait(0) is False  # listening from here on
        OutboxMessageFactory(task_name="webhooks.deliver", lane="webhooks")
        assert main_only.wait(0.5) is False

        OutboxMessageFactory(task_name="webhooks.deliver", lane="webhooks")
        OutboxMessageFactory(task_name="billing.charge_order")
        assert main_only.wait(10) is True  # woken by its own lane's commit, past the other
    finally:
        main_only.close()


def test_a_lost_listening_connection_is_listened_on_again(wakeups):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE query LIKE 'LISTEN %%' AND pid <> pg_backend_pid()"
        )
    assert wakeups.wait(0.5) is False  # the failure is found, the relay polls meanwhile
    OutboxMessageFactory()
    # The next wait listens again; a row committed while nobody listened is the poll's.
    wakeups.wait(0.5)
    OutboxMessageFactory()
    assert wakeups.wait(10) is True


# --- the relay on the real broker -------------------------------------------------------


@pytest.fixture
def probes_cleared(settings):
    settings.BROKER_PUBLISH_TIMEOUT = 5
    yield
    take_probes(settings.CELERY_BROKER_URL)


@pytest.mark.broker
@pytest.mark.usefixtures("probes_cleared", "transactional_db")
def test_the_relay_publishes_a_commit_at_once_though_its_poll_is_a_minute_away():
    stopping = threading.Event()
    thread = threading.Thread(
        target=lambda: (
            relay.run(interval=60, batch=100, min_age=0, stopping=stopping.is_set),
            connection.close(),
        )
    )
    thread.start()
    try:
        time.sleep(1)  # the relay has made its first pass and waits
        with transaction.atomic():
            row = outbox.enqueue(task_name=ACCEPTED, kwargs={"order_id": "probe"})
        committed = time.monotonic()
        while not OutboxMessage.objects.filter(pk=row.pk, published_at__isnull=False).exists():
            assert time.monotonic() - committed < 5, "the relay was not woken by the commit"
            time.sleep(0.02)
    finally:
        stopping.set()
        OutboxMessageFactory()  # wakes it to see that it is stopping
        thread.join(10)
    assert not thread.is_alive()


@pytest.mark.broker
@pytest.mark.usefixtures("probes_cleared")
def test_a_kept_connection_confirms_batch_after_batch_and_one_the_broker_dropped_is_replaced():
    publisher = BatchPublisher()
    try:
        first = [message(ACCEPTED) for _ in range(5)]
        second = [message(ACCEPTED) for _ in range(7)]
        assert publisher.send(first).confirmed == {m["message_id"] for m in first}
        kept = publisher._connection
        # The second batch's delivery tags run on from the first's: all seven confirmed.
        assert publisher.send(second).confirmed == {m["message_id"] for m in second}
        assert publisher._connection is kept

        # The connection breaks under it (a broker restart, a network cut).
        kept.connection.sock.shutdown(socket.SHUT_RDWR)
        publisher.keep_alive()
        third = [message(ACCEPTED) for _ in range(3)]
        confirms = publisher.send(third)
        if confirms.failed:  # the drop was found by this batch: the next one reconnects
            assert publisher._connection is None
            confirms = publisher.send(third)
        assert confirms.confirmed == {m["message_id"] for m in third}
    finally:
        publisher.close()
    assert set(take_probes(settings.CELERY_BROKER_URL)) == {
        str(m["message_id"]) for m in [*first, *second, *third]
    }


def test_on_postgresql_the_relay_alone_publishes_by_default():
    from config import settings as project_settings

    assert project_settings.OUTBOX_PUBLISH_ON_COMMIT is False


@pytest.mark.usefixtures("transactional_db")
def test_a_busy_relay_gathers_commits_into_one_pass_per_gather_and_a_quiet_one_waits_not(
    monkeypatch,
):
    passes = []
    monkeypatch.setattr(relay, "publish_pending", lambda **_: passes.append(time.monotonic()) or 0)
    stopping = threading.Event()
    thread = threading.Thread(
        target=lambda: (
            relay.run(interval=60, batch=100, min_age=0, gather=0.5, stopping=stopping.is_set),
            connection.close(),
        )
    )
    thread.start()
    try:
        time.sleep(1)  # quiet since the first pass
        first_commit = time.monotonic()
        for _ in range(6):  # a commit every 50 ms
            OutboxMessageFactory()
            time.sleep(0.05)
        time.sleep(1)
    finally:
        stopping.set()
        OutboxMessageFactory()
        thread.join(10)
    woken = [at for at in passes if at > first_commit]
    assert woken[0] - first_commit < 0.2  # after a quiet spell: at once
    # Six commits in 0.3 s: the first at once, the others gathered into the next pass.
    assert len([at for at in woken if at < first_commit + 1.3]) == 2
    assert all(later - earlier >= 0.45 for earlier, later in itertools.pairwise(woken))


@pytest.mark.parametrize(
    "error", [OperationalError("server closed the connection"), InterfaceError("closed")]
)
def test_a_database_error_in_a_pass_is_retried_not_the_end_of_the_relay(monkeypatch, error):
    calls = []

    def failing_once(**_):
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise error
        return 0

    monkeypatch.setattr(relay, "publish_pending", failing_once)
    monkeypatch.setattr(relay.Wakeups, "wait", lambda self, timeout: False)
    relay.run(interval=0.01, batch=100, min_age=0, stopping=lambda: len(calls) >= 3)

    assert len(calls) == 3
