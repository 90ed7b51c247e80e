"""The sweep for orders with no way forward: what it reports, and where an operator sees it."""

import logging
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from ordering.models import Order
from ordering.state_machine import OrderStatus
from ordering.tasks import REPORTED_IDS, sweep_stuck_orders

from ..factories import DeadLetterFactory, OrderFactory, OutboxMessageFactory, UserFactory

pytestmark = pytest.mark.django_db


def unchanged_for(order: Order, minutes: float) -> Order:
    Order.objects.filter(pk=order.pk).update(updated_at=timezone.now() - timedelta(minutes=minutes))
    return order


@pytest.fixture
def orders(settings):
    """One order of each kind, all but `fresh` unchanged for longer than STUCK_ORDER_MINUTES."""
    settings.STUCK_ORDER_MINUTES = 30
    stuck = unchanged_for(OrderFactory(), 31)  # PENDING, no outbox row, no dead letter
    waiting = unchanged_for(OrderFactory(), 31)
    OutboxMessageFactory(kwargs={"order_id": str(waiting.id)})
    failed = DeadLetterFactory().subject_id  # FAILED, with a NEW dead letter to replay
    unchanged_for(Order.objects.get(pk=failed), 31)
    done = unchanged_for(OrderFactory(status=OrderStatus.PROCESSED), 31)
    fresh = OrderFactory()  # its message may well be queued: too early to tell
    return {"stuck": stuck, "waiting": waiting, "done": done, "fresh": fresh}


def test_the_sweep_reports_only_orders_unchanged_for_a_while_with_no_way_forward(orders, caplog):
    with caplog.at_level(logging.ERROR, logger="ordering.tasks"):
        assert sweep_stuck_orders() == 1

    [record] = caplog.records
    assert "orders with no way forward: count=1" in record.getMessage()
    assert str(orders["stuck"].id) in record.getMessage()


def test_the_sweep_is_silent_when_every_order_has_a_way_forward(caplog):
    OrderFactory()

    with caplog.at_level(logging.INFO, logger="ordering.tasks"):
        assert sweep_stuck_orders() == 0

    assert caplog.records == []


def test_the_sweep_counts_them_all_and_names_a_few(settings, caplog):
    settings.STUCK_ORDER_MINUTES = 1
    for _ in range(REPORTED_IDS + 3):
        unchanged_for(OrderFactory(), 2)

    with caplog.at_level(logging.ERROR, logger="ordering.tasks"):
        assert sweep_stuck_orders() == REPORTED_IDS + 3

    message = caplog.records[0].getMessage()
    assert f"count={REPORTED_IDS + 3}" in message
    assert len(message.split(": ")[-1].split()) == REPORTED_IDS


def test_the_dashboard_counts_them_and_links_to_the_admin_list_of_them(orders, client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    page = client.get(reverse("admin:dashboard")).content.decode()
    row = page[page.index('id="stuck-orders"') :].split("</tr>")[0]
    assert 'class="alert"' in row
    assert '<td class="number">1</td>' in row
    link = row.split('href="')[1].split('"')[0].replace("&amp;", "&")

    listed = client.get(link)
    assert listed.status_code == 200
    assert list(listed.context["cl"].result_list) == [orders["stuck"]]
