"""The order's timeline page in the admin: who may read it, and what it links to."""

import re
import uuid

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from messaging.models import DeadLetter

from ..factories import OrderFactory, UserFactory
from .test_timeline import dead_lettered_and_replayed_order

pytestmark = pytest.mark.django_db


def timeline_url(order_id) -> str:
    return reverse("admin:ordering_order_timeline", args=[order_id])


def staff_allowed_to(*codenames: str):
    user = UserFactory(is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    assert user.user_permissions.count() == len(codenames)
    return user


def test_the_order_page_links_to_its_timeline(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    order = OrderFactory()

    html = client.get(reverse("admin:ordering_order_change", args=[order.pk])).text

    assert f'id="timeline-link" href="{timeline_url(order.pk)}"' in html


def test_an_operator_reads_events_messages_and_dead_letters_linked_together(client):
    operator = UserFactory(username="night-shift", is_staff=True, is_superuser=True)
    client.force_login(operator)
    order, message = dead_lettered_and_replayed_order(replayed_by=operator)
    dead_letter = DeadLetter.objects.get()

    response = client.get(timeline_url(order.pk))

    assert response.status_code == 200
    html = response.text
    kinds = re.findall(r'<tr class="entry kind-\w+" data-kind="(\w+)"', html)
    assert kinds == [
        "event",
        "message",
        "result",
        "death",
        "event",
        "event",
        "replay",
        "published",
    ]
    assert "Replayed by night-shift" in html
    assert "fraud.errors.RulesUnavailable: the rules service did not answer" in html
    # timeline -> the message's row -> its outbox row, its dead letter and its task result
    assert f'<a class="message-link" href="#message-{message.pk}">' in html
    assert f'<tr id="message-{message.pk}"' in html
    outbox_page = reverse("admin:messaging_outboxmessage_change", args=[message.pk])
    assert f'href="{outbox_page}"' in html
    dead_letter_page = reverse("admin:messaging_deadletter_change", args=[dead_letter.pk])
    assert f'class="dead-letter-link" href="{dead_letter_page}"' in html
    assert client.get(outbox_page).status_code == 200
    assert client.get(dead_letter_page).status_code == 200


def test_a_replay_from_the_admin_is_on_the_timeline_once_with_who_did_it(client):
    operator = UserFactory(username="day-shift", is_staff=True, is_superuser=True)
    client.force_login(operator)
    order, _ = dead_lettered_and_replayed_order()
    DeadLetter.objects.update(status=DeadLetter.Status.NEW)  # died again, say
    dead_letter = DeadLetter.objects.get()
    changelist = reverse("admin:messaging_deadletter_changelist")
    client.post(changelist, {"action": "replay_selected", "_selected_action": [dead_letter.pk]})

    html = client.get(timeline_url(order.pk)).text

    assert html.count("Replayed by day-shift") == 1


def test_staff_with_only_the_order_view_permission_see_events_not_messages(client):
    client.force_login(staff_allowed_to("view_order"))
    order, _ = dead_lettered_and_replayed_order()

    response = client.get(timeline_url(order.pk))

    assert response.status_code == 200
    kinds = set(re.findall(r'data-kind="(\w+)"', response.text))
    assert kinds == {"event"}
    assert 'id="hidden-parts"' in response.text
    assert "dead-letter-link" not in response.text


@pytest.mark.parametrize("who", ["anonymous", "buyer"])
def test_anyone_but_staff_is_sent_to_the_login(client, who):
    if who == "buyer":
        client.force_login(UserFactory())
    url = timeline_url(OrderFactory().pk)

    response = client.get(url)

    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


def test_staff_without_the_order_view_permission_are_refused(client):
    client.force_login(staff_allowed_to("view_deadletter"))

    assert client.get(timeline_url(OrderFactory().pk)).status_code == 403


@pytest.mark.parametrize("order_id", [uuid.uuid4(), "not-a-uuid"])
def test_an_unknown_order_is_not_found(client, order_id):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    assert client.get(timeline_url(order_id)).status_code == 404
