"""The webhooks API: a buyer's own endpoints and deliveries, nobody else's."""

import pytest
from rest_framework.test import APIClient

from ordering import services as order_services
from ordering.state_machine import OrderStatus
from webhooks import services
from webhooks.models import WebhookDelivery, WebhookEndpoint

from ..factories import OrderFactory

pytestmark = pytest.mark.django_db

ENDPOINTS = "/api/webhooks/endpoints/"
DELIVERIES = "/api/webhooks/deliveries/"


@pytest.fixture
def owner_client(owner) -> APIClient:
    client = APIClient()
    client.force_authenticate(owner)
    return client


@pytest.fixture
def other_client(other_buyer) -> APIClient:
    client = APIClient()
    client.force_authenticate(other_buyer)
    return client


def failed_delivery(endpoint) -> WebhookDelivery:
    order = OrderFactory(buyer=endpoint.owner)
    order_services.transition(order_id=order.id, to=OrderStatus.APPROVED, cause="test")
    delivery = WebhookDelivery.objects.get(subject_id=order.id)
    services.fail_delivery(delivery_id=delivery.id, reason="rejected")
    return delivery


def test_registering_shows_the_secret_once(owner_client, receiver):
    response = owner_client.post(
        ENDPOINTS,
        {"url": receiver.url, "event_types": ["order.processed", "order.approved"]},
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["secret"].startswith("whsec_")
    assert body["event_types"] == ["order.approved", "order.processed"]
    assert WebhookEndpoint.objects.get(pk=body["id"]).secret == body["secret"]
    listed = owner_client.get(ENDPOINTS).json()["results"]
    assert [e["id"] for e in listed] == [body["id"]]
    assert "secret" not in listed[0]
    assert "secret" not in owner_client.get(f"{ENDPOINTS}{body['id']}/").json()


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("https://10.0.0.1/hooks", "target_refused"),
        ("https://169.254.169.254/latest/meta-data/", "target_refused"),
        ("https://user:pw@example.com/hooks", "target_refused"),
        ("https://no-such-host.invalid/hooks", "target_unresolvable"),
    ],
)
def test_a_target_webhooks_may_not_go_to_is_a_400_saying_why(owner_client, url, code):
    response = owner_client.post(
        ENDPOINTS, {"url": url, "event_types": ["order.processed"]}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert not WebhookEndpoint.objects.exists()


def test_loopback_is_refused_without_the_development_setting(owner_client, settings, receiver):
    settings.WEBHOOK_ALLOW_LOOPBACK = False

    response = owner_client.post(
        ENDPOINTS, {"url": receiver.url, "event_types": ["order.processed"]}, format="json"
    )

    assert response.status_code == 400
    assert "loopback" in response.json()["detail"]


def test_unknown_event_types_and_unknown_fields_are_400(owner_client, receiver):
    unknown_type = owner_client.post(
        ENDPOINTS, {"url": receiver.url, "event_types": ["order.shipped"]}, format="json"
    )
    unknown_field = owner_client.post(
        ENDPOINTS,
        {"url": receiver.url, "event_types": ["order.processed"], "secret": "mine"},
        format="json",
    )

    assert unknown_type.status_code == 400 and "event_types" in unknown_type.json()
    assert unknown_field.status_code == 400 and "secret" in unknown_field.json()


def test_disable_enable_and_rotate(owner_client, endpoint):
    url = f"{ENDPOINTS}{endpoint.id}/"

    disabled = owner_client.post(f"{url}disable/").json()
    assert disabled["is_active"] is False and disabled["disabled_reason"]
    enabled = owner_client.post(f"{url}enable/").json()
    assert enabled["is_active"] is True and enabled["disabled_reason"] == ""

    rotated = owner_client.post(f"{url}rotate-secret/", {"grace_hours": 2}, format="json")
    assert rotated.status_code == 200
    assert rotated.json()["secret"] != endpoint.secret
    assert rotated.json()["previous_secret_expires_at"] is not None
    endpoint.refresh_from_db()
    assert endpoint.previous_secret and endpoint.secret == rotated.json()["secret"]


def test_someone_elses_endpoints_and_deliveries_are_404(other_client, endpoint):
    delivery = failed_delivery(endpoint)

    assert other_client.get(f"{ENDPOINTS}{endpoint.id}/").status_code == 404
    assert other_client.post(f"{ENDPOINTS}{endpoint.id}/disable/").status_code == 404
    assert other_client.post(f"{ENDPOINTS}{endpoint.id}/rotate-secret/").status_code == 404
    assert other_client.get(f"{DELIVERIES}{delivery.id}/").status_code == 404
    assert other_client.post(f"{DELIVERIES}{delivery.id}/redeliver/").status_code == 404
    assert other_client.get(ENDPOINTS).json()["results"] == []
    assert other_client.get(DELIVERIES).json()["results"] == []
    endpoint.refresh_from_db()
    assert endpoint.is_active


def test_a_buyer_lists_failed_deliveries_and_asks_for_a_redelivery(owner_client, endpoint):
    delivery = failed_delivery(endpoint)

    failed = owner_client.get(DELIVERIES, {"status": "FAILED"}).json()["results"]
    assert [d["id"] for d in failed] == [str(delivery.id)]
    assert failed[0]["event"]["type"] == "order.approved"

    response = owner_client.post(f"{DELIVERIES}{delivery.id}/redeliver/")
    assert response.status_code == 202
    assert response.json()["status"] == "PENDING"
    again = owner_client.post(f"{DELIVERIES}{delivery.id}/redeliver/")
    assert again.status_code == 409
    assert owner_client.get(DELIVERIES, {"status": "FAILED"}).json()["results"] == []


def test_anonymous_callers_get_401(api_client, endpoint):
    assert api_client.get(ENDPOINTS).status_code == 401
    assert api_client.get(DELIVERIES).status_code == 401
