"""A RabbitMQ memory alarm under the real system: orders are still accepted, and all finish.

Under an alarm RabbitMQ blocks every connection that publishes and confirms nothing, so each
of the relay's batches can only wait out BROKER_PUBLISH_TIMEOUT, and the web process, which
never waits for the broker, answers as always. The node is a private one
(tests/live/node.py), since raising an alarm blocks every client of a node.
"""

import time
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token

from chaos.http import ApiClient
from messaging.models import OutboxMessage
from ordering.models import Order
from ordering.state_machine import TERMINAL_STATUSES

from ..factories import UserFactory
from ..live.node import private_node
from ..live.system import LiveSystem, database_url
from ..live.wait import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.timeout(180)]

# 30 s of alarm, as an operator would see one: many deadlines long, with orders all along.
ALARM_SECONDS = 30
DEADLINE = 1.0  # BROKER_PUBLISH_TIMEOUT of every process here
LATENCY = 1.0  # a request's own time on a busy 2-core test machine, on top of the deadline
ORDER = {"product_name": "Teapot", "quantity": 1, "unit_price": "20.00"}
PACE = 0.5  # seconds between orders: a buyer's pace, far below the API's throttle


@pytest.fixture(scope="module")
def alarm_system(live_system, django_db_blocker):
    """A second live system, on a private node, sharing the suite's database.

    The suite's relay would publish this system's outbox rows to the suite's broker, around
    the alarm, so it is paused meanwhile.
    """
    live_system.relay.stop()
    try:
        with private_node("alarm") as node:
            with django_db_blocker.unblock():
                db_url = database_url(connection.settings_dict)
            system = LiveSystem.start(
                db_url=db_url,
                broker_url=node.url(),
                BROKER_PUBLISH_TIMEOUT=str(DEADLINE),
                # One buyer places an order a second or two for the whole alarm.
                FRAUD_MAX_ORDERS_PER_HOUR="1000",
            )
            try:
                yield node, system
            finally:
                node.clear_alarms()
                system.stop()
    finally:
        live_system.relay.start()
        live_system.relay.wait_for_output("relay started")


def test_under_a_memory_alarm_every_order_is_accepted_in_time_and_completes_after_it(
    alarm_system, transactional_db
):
    node, system = alarm_system
    api = ApiClient(system.base_url, Token.objects.create(user=UserFactory()).key)
    assert api.post("/api/orders/", ORDER).status == 201  # warm: pooled broker connections

    node.memory_alarm()
    order_ids, answer_times = [], []
    try:
        alarm_ends = time.monotonic() + ALARM_SECONDS
        while time.monotonic() < alarm_ends:
            started = time.monotonic()
            response = api.post("/api/orders/", ORDER)
            answer_times.append(time.monotonic() - started)
            assert response.status == 201, response.body
            order_ids.append(uuid.UUID(response.body["id"]))
            time.sleep(max(0.0, started + PACE - time.monotonic()))
        assert node.alarms(), "the alarm did not hold for the whole run"
        held = list(
            OutboxMessage.objects.filter(published_at__isnull=True).values_list(
                "created_at", "attempts"
            )
        )
        checked_at = timezone.now()
    finally:
        # Before anything else: the database flush after the test must not wait behind a
        # process stuck on the blocked broker.
        node.clear_alarms()

    assert max(answer_times) < DEADLINE + LATENCY, answer_times
    assert len(order_ids) >= ALARM_SECONDS / (PACE + DEADLINE + LATENCY)
    # Nothing was confirmed during the alarm: every order's message waited in the outbox,
    # and the relay tried and kept each (all but those of the batch still waiting out its
    # deadline when the alarm ended).
    assert len(held) >= len(order_ids)
    tried_by_now = checked_at - timedelta(seconds=2 * (DEADLINE + LATENCY))
    assert all(attempts >= 1 for created_at, attempts in held if created_at < tried_by_now)

    wait_until(
        lambda: (
            Order.objects.filter(pk__in=order_ids, status__in=TERMINAL_STATUSES).count()
            == len(order_ids)
        ),
        timeout=60,
        what="every order accepted during the alarm to finish",
    )
    statuses = set(Order.objects.filter(pk__in=order_ids).values_list("status", flat=True))
    assert statuses == {"PROCESSED"}
    assert not OutboxMessage.objects.filter(published_at__isnull=True).exists()
    # Copies left in the blocked sockets arrive after the alarm: let them be consumed (as
    # no-ops) before the database is wiped, or they would die as messages of missing orders.
    system.wait_until_idle()
