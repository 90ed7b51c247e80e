"""The operations dashboard in the admin: who may see it, and what it shows."""

import re
import socket
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone
from kombu import Connection

from messaging.models import DeadLetter
from messaging.topology import declare_topology
from ordering.models import Order
from ordering.state_machine import OrderStatus

from ..factories import DeadLetterFactory, OrderFactory, UserFactory

pytestmark = pytest.mark.django_db
DASHBOARD = reverse("admin:dashboard")


@pytest.fixture
def superuser_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def broker_down(monkeypatch):
    """The dashboard's broker (Celery reads CELERY_BROKER_URL first) refuses connections."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("CELERY_BROKER_URL", f"amqp://guest:guest@127.0.0.1:{port}//")


def cell(html: str, row_attr: str, css_class: str) -> str:
    match = re.search(rf'<tr {row_attr}>.*?<td class="[^"]*{css_class}[^"]*">([^<]*)<', html, re.S)
    assert match, f"no {css_class} cell in the row {row_attr}"
    return match.group(1).strip()


def test_the_admin_index_links_to_the_dashboard(superuser_client):
    response = superuser_client.get(reverse("admin:index"))

    assert f'href="{DASHBOARD}"' in response.text


@pytest.mark.parametrize("role", ["anonymous", "buyer"])
def test_anyone_but_staff_is_sent_to_the_admin_login(client, role):
    if role == "buyer":
        client.force_login(UserFactory())

    response = client.get(DASHBOARD)

    assert response.status_code == 302
    assert response.url == f"{reverse('admin:login')}?next={DASHBOARD}"


def test_staff_see_orders_by_status_and_the_charts(client):
    client.force_login(UserFactory(is_staff=True))
    OrderFactory.create_batch(3)
    OrderFactory(status=OrderStatus.PROCESSED)  # its one event is its arrival at PROCESSED

    response = client.get(DASHBOARD)

    assert response.status_code == 200
    html = response.text
    pending = re.search(r'<tr data-status="PENDING">(.*?)</tr>', html, re.S).group(1)
    assert 'status__exact=PENDING">PENDING</a>' in pending
    assert '<td class="number">3<' in pending
    assert re.search(r'data-status="PROCESSED">.*?<td class="number">1<', html, re.S)
    assert re.search(r'data-status="CANCELED">.*?<td class="number">0<', html, re.S)
    assert re.search(r'class="placed-total">4<', html)
    assert re.search(r'class="finished-total">1<', html)
    assert html.count('<svg class="chart"') == 2
    assert html.count('<rect class="bar"') == 1  # every order placed in the same minute
    assert '<meta http-equiv="refresh" content="15">' in html


def test_auto_refresh_can_be_paused(superuser_client):
    response = superuser_client.get(DASHBOARD, {"refresh": "off"})

    assert 'http-equiv="refresh"' not in response.text
    assert "Auto-refresh paused" in response.text


@pytest.mark.broker
def test_queue_depths_come_from_the_broker(superuser_client):
    with Connection(settings.CELERY_BROKER_URL) as connection:
        declare_topology(connection)  # as the worker or the release phase would have

    response = superuser_client.get(DASHBOARD)

    for queue in ("fraud", "billing", "dead_letter", "dead_letter_parked"):
        assert cell(response.text, f'data-queue="{queue}"', "depth").isdigit()


def test_queue_depths_show_unavailable_when_the_broker_is_down(superuser_client, broker_down):
    response = superuser_client.get(DASHBOARD)

    assert response.status_code == 200
    for queue in ("fraud", "billing", "dead_letter", "dead_letter_parked"):
        assert cell(response.text, f'data-queue="{queue}"', "depth") == "unavailable"


def test_new_dead_letters_are_listed_with_a_link_to_replay_them(superuser_client, broker_down):
    new = DeadLetterFactory()
    DeadLetterFactory(status=DeadLetter.Status.REPLAYED)

    html = superuser_client.get(DASHBOARD).text

    assert re.search(r'New dead letters: <span class="count">1<', html)
    replay = reverse("admin:messaging_deadletter_changelist") + f"?id__exact={new.pk}"
    assert f'<a class="replay" href="{replay}">' in html
    changelist = superuser_client.get(replay).text
    assert 'value="replay_selected"' in changelist
    assert f'name="_selected_action" value="{new.pk}"' in changelist
    assert changelist.count('name="_selected_action"') == 1


def test_staff_without_the_view_permission_see_how_many_dead_letters_not_which(client, broker_down):
    staff = UserFactory(is_staff=True)
    client.force_login(staff)
    letter = DeadLetterFactory()

    before = client.get(DASHBOARD).text
    staff.user_permissions.add(Permission.objects.get(codename="view_deadletter"))
    after = client.get(DASHBOARD).text

    assert re.search(r'New dead letters: <span class="count">1<', before)
    assert f'data-dead-letter="{letter.pk}"' not in before
    assert "Can view dead letter" in before
    assert f'data-dead-letter="{letter.pk}"' in after


def test_the_dashboard_costs_9_queries_however_many_orders(
    superuser_client, broker_down, django_assert_num_queries
):
    for minutes_ago in range(0, 50, 5):
        order = OrderFactory()
        Order.objects.filter(pk=order.pk).update(
            created_at=timezone.now() - timedelta(minutes=minutes_ago)
        )
    DeadLetterFactory.create_batch(3)

    # session, user; orders by status; orders with no way forward; placed per minute,
    # finished per minute, finished over the hour; new dead letters counted, then listed
    with django_assert_num_queries(9):
        superuser_client.get(DASHBOARD)


def test_the_dashboard_links_to_flower_and_rabbitmq_management_when_configured(
    superuser_client, broker_down, settings
):
    settings.FLOWER_URL = "https://flower.example.com/"
    settings.RABBITMQ_MANAGEMENT_URL = "https://rabbit.example.com:15672/"

    html = superuser_client.get(DASHBOARD).text

    assert 'id="flower-link" href="https://flower.example.com/"' in html
    assert 'id="rabbitmq-management-link" href="https://rabbit.example.com:15672/"' in html


def test_the_dashboard_draws_no_link_to_a_tool_that_is_not_configured(
    superuser_client, broker_down, settings
):
    settings.FLOWER_URL = ""
    settings.RABBITMQ_MANAGEMENT_URL = "https://rabbit.example.com:15672/"

    html = superuser_client.get(DASHBOARD).text

    assert "flower-link" not in html
    assert "Flower" not in html
    assert 'id="rabbitmq-management-link"' in html
