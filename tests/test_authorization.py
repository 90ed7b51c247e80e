"""Who may do what: every role against every endpoint and admin action (README's table).

Roles: anonymous, the order's buyer, another buyer, staff without model permissions, and a
superuser. Another buyer's order is 404, never 403: its existence is not revealed.
"""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from rest_framework.test import APIClient

from fraud.models import BlockedBuyer
from messaging.models import DeadLetter

from .factories import DeadLetterFactory, OrderFactory, UserFactory

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "buyer", "other_buyer", "staff", "superuser"]
ORDER_BODY = {"product_name": "Teapot", "quantity": 1, "unit_price": "25.00"}


@pytest.fixture
def world():
    buyer = UserFactory()
    return {
        "buyer": buyer,
        "other_buyer": UserFactory(),
        "staff": UserFactory(is_staff=True),
        "superuser": UserFactory(is_staff=True, is_superuser=True),
        "order": OrderFactory(buyer=buyer),
    }


def api_as(role: str, world: dict) -> APIClient:
    client = APIClient()
    if role != "anonymous":
        client.force_authenticate(world[role])
    return client


@pytest.mark.parametrize(
    ("role", "expected"),
    list(zip(ROLES, [401, 200, 200, 200, 200], strict=True)),
)
def test_list_orders(role, expected, world):
    response = api_as(role, world).get("/api/orders/")

    assert response.status_code == expected
    if expected == 200:
        ids = {row["id"] for row in response.data["results"]}
        sees_it = role in ("buyer", "staff", "superuser")
        assert (str(world["order"].id) in ids) == sees_it


@pytest.mark.parametrize(
    ("role", "expected"),
    list(zip(ROLES, [401, 200, 404, 200, 200], strict=True)),
)
def test_retrieve_an_order(role, expected, world):
    assert api_as(role, world).get(f"/api/orders/{world['order'].id}/").status_code == expected


@pytest.mark.parametrize(
    ("role", "expected"), list(zip(ROLES, [401, 201, 201, 201, 201], strict=True))
)
def test_create_an_order(role, expected, world):
    response = api_as(role, world).post("/api/orders/", ORDER_BODY, format="json")

    assert response.status_code == expected


@pytest.mark.parametrize(
    ("role", "expected"),
    list(zip(ROLES, [401, 200, 404, 200, 200], strict=True)),
)
def test_cancel_an_order(role, expected, world):
    response = api_as(role, world).post(f"/api/orders/{world['order'].id}/cancel/")

    assert response.status_code == expected
    world["order"].refresh_from_db()
    assert (world["order"].status == "CANCELED") == (expected == 200)


def admin_as(role: str, world: dict, client):
    if role != "anonymous":
        client.force_login(world[role])
    return client


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("anonymous", False), ("buyer", False), ("staff", False), ("superuser", True)],
)
@pytest.mark.parametrize("action", ["replay_selected", "discard_selected"])
def test_replay_and_discard_a_dead_letter_in_the_admin(
    role, allowed, action, world, client, monkeypatch
):
    dead_letter = DeadLetterFactory()

    admin_as(role, world, client).post(
        reverse("admin:messaging_deadletter_changelist"),
        {"action": action, "_selected_action": [dead_letter.pk]},
    )

    dead_letter.refresh_from_db()
    assert (dead_letter.status != DeadLetter.Status.NEW) == allowed
    if allowed:
        assert dead_letter.acted_by == world[role]


@pytest.mark.parametrize(
    ("permission", "action", "status"),
    [
        ("replay_deadletter", "replay_selected", "REPLAYED"),
        ("discard_deadletter", "discard_selected", "DISCARDED"),
    ],
)
def test_staff_need_the_action_s_own_permission(
    permission, action, status, world, client, monkeypatch
):
    staff = world["staff"]
    staff.user_permissions.add(
        Permission.objects.get(codename="view_deadletter"),
        Permission.objects.get(codename=permission),
    )
    dead_letter = DeadLetterFactory()
    client.force_login(staff)

    client.post(
        reverse("admin:messaging_deadletter_changelist"),
        {"action": action, "_selected_action": [dead_letter.pk]},
    )

    dead_letter.refresh_from_db()
    assert (dead_letter.status, dead_letter.acted_by) == (status, staff)


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("anonymous", False), ("buyer", False), ("staff", False), ("superuser", True)],
)
def test_edit_the_fraud_blocklist_in_the_admin(role, allowed, world, client):
    admin_as(role, world, client).post(
        reverse("admin:fraud_blockedbuyer_add"), {"buyer": world["other_buyer"].pk, "reason": "x"}
    )

    assert BlockedBuyer.objects.filter(buyer=world["other_buyer"]).exists() == allowed


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("anonymous", False),
        ("buyer", False),
        ("other_buyer", False),
        ("staff", True),
        ("superuser", True),
    ],
)
def test_the_operations_dashboard_in_the_admin(role, allowed, world, client):
    dashboard = reverse("admin:dashboard")
    dead_letter = DeadLetterFactory()

    response = admin_as(role, world, client).get(dashboard)

    if not allowed:
        assert response.status_code == 302
        assert response.url == f"{reverse('admin:login')}?next={dashboard}"
        return
    assert response.status_code == 200
    # Listing dead letters needs their view permission, as in their own admin page.
    listed = f'data-dead-letter="{dead_letter.pk}"' in response.text
    assert listed == (role == "superuser")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/api/schema/", "/api/docs/"])
def test_health_and_api_docs_are_public_to_every_role(role, path, world):
    response = api_as(role, world).get(path, HTTP_ACCEPT="*/*")

    assert response.status_code == 200, response.content[:200]
