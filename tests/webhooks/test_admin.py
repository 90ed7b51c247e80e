"""Staff's webhooks admin: register for a user (the secret shown once), disable, rotate,
and send deliveries again; each only with its permission."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from ordering import services as order_services
from ordering.state_machine import OrderStatus
from webhooks import services
from webhooks.models import WebhookDelivery, WebhookEndpoint

from ..factories import OrderFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(client):
    user = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


def test_staff_register_an_endpoint_for_a_user_and_see_its_secret_once(client, superuser, receiver):
    buyer = UserFactory()

    response = client.post(
        reverse("admin:webhooks_webhookendpoint_add"),
        {"owner": buyer.pk, "url": receiver.url, "event_types": ["order.processed"]},
        follow=True,
    )

    endpoint = WebhookEndpoint.objects.get(owner=buyer)
    assert endpoint.event_types == ["order.processed"]
    assert endpoint.secret in response.content.decode()
    page = client.get(reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk]))
    assert endpoint.secret not in page.content.decode()


def test_the_admin_refuses_a_private_target_with_the_reason(client, superuser, settings):
    settings.WEBHOOK_ALLOW_LOOPBACK = False

    response = client.post(
        reverse("admin:webhooks_webhookendpoint_add"),
        {"owner": superuser.pk, "url": "https://10.0.0.1/in", "event_types": ["order.processed"]},
    )

    assert response.status_code == 200  # the form again, with the error
    assert "a private address" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_disable_and_rotate_from_the_list(client, superuser, endpoint):
    changelist = reverse("admin:webhooks_webhookendpoint_changelist")

    client.post(changelist, {"action": "rotate_selected", "_selected_action": [endpoint.pk]})
    client.post(changelist, {"action": "disable_selected", "_selected_action": [endpoint.pk]})

    rotated = WebhookEndpoint.objects.get(pk=endpoint.pk)
    assert rotated.secret != endpoint.secret and rotated.previous_secret == endpoint.secret
    assert not rotated.is_active and str(superuser) in rotated.disabled_reason


def failed_delivery(endpoint) -> WebhookDelivery:
    order = OrderFactory(buyer=endpoint.owner)
    order_services.transition(order_id=order.id, to=OrderStatus.APPROVED, cause="test")
    delivery = WebhookDelivery.objects.get(subject_id=order.id)
    services.fail_delivery(delivery_id=delivery.id, reason="rejected")
    return delivery


@pytest.mark.parametrize("permitted", [False, True])
def test_staff_need_the_redeliver_permission(client, endpoint, permitted):
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_webhookdelivery"))
    if permitted:
        staff.user_permissions.add(Permission.objects.get(codename="redeliver_webhookdelivery"))
    client.force_login(staff)
    delivery = failed_delivery(endpoint)

    client.post(
        reverse("admin:webhooks_webhookdelivery_changelist"),
        {"action": "redeliver_selected", "_selected_action": [delivery.pk]},
    )

    delivery.refresh_from_db()
    assert (delivery.status == "PENDING") == permitted


def test_a_delivery_is_found_by_its_order(client, superuser, endpoint):
    delivery = failed_delivery(endpoint)

    page = client.get(
        reverse("admin:webhooks_webhookdelivery_changelist"), {"q": str(delivery.subject_id)}
    )

    assert str(delivery.pk) in page.content.decode()
