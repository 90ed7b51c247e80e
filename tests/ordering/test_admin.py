"""The Django admin as an operator uses it: find orders, read their history, cancel."""

import pytest
from django.urls import reverse

from fraud.models import BlockedBuyer
from ordering.state_machine import OrderStatus

from ..factories import OrderFactory, UserFactory

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:ordering_order_changelist")


@pytest.fixture
def operator_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_changelist_lists_orders_and_filters_by_status(operator_client):
    pending, approved = OrderFactory(), OrderFactory(status=OrderStatus.APPROVED)

    everything = operator_client.get(CHANGELIST)
    only_approved = operator_client.get(CHANGELIST, {"status__exact": "APPROVED"})

    assert everything.status_code == 200
    assert str(pending.id) in everything.text and str(approved.id) in everything.text
    assert str(approved.id) in only_approved.text and str(pending.id) not in only_approved.text


@pytest.mark.parametrize("term", ["by-id", "by-buyer", "by-product", "not a uuid ' OR 1=1 --"])
def test_search_by_id_buyer_and_product(operator_client, term):
    order = OrderFactory(product_name="Blue teapot")
    OrderFactory(product_name="Red kettle")
    query = {
        "by-id": str(order.id),
        "by-buyer": order.buyer.username,
        "by-product": "teapot",
    }.get(term, term)

    response = operator_client.get(CHANGELIST, {"q": query})

    assert response.status_code == 200
    found = list(response.context["cl"].result_list)
    assert found == ([] if term.startswith("not") else [order])


def test_change_page_shows_the_history_inline(operator_client, buyer):
    order = OrderFactory(buyer=buyer)
    response = operator_client.get(reverse("admin:ordering_order_change", args=[order.pk]))

    assert response.status_code == 200
    assert "created" in response.text
    assert response.context["inline_admin_formsets"][0].formset.queryset.count() == 1


def test_cancel_action_goes_through_the_state_machine(operator_client):
    pending, processed = OrderFactory(), OrderFactory(status=OrderStatus.PROCESSED)

    response = operator_client.post(
        CHANGELIST,
        {"action": "cancel_orders", "_selected_action": [pending.pk, processed.pk]},
        follow=True,
    )

    assert response.status_code == 200
    pending.refresh_from_db()
    processed.refresh_from_db()
    assert (pending.status, pending.version) == (OrderStatus.CANCELED, 2)
    assert pending.events.latest("version").cause.startswith("canceled by")
    assert processed.status == OrderStatus.PROCESSED
    assert "Not canceled" in response.text


def test_orders_cannot_be_added_or_deleted_in_the_admin(operator_client):
    order = OrderFactory()

    assert operator_client.get(reverse("admin:ordering_order_add")).status_code == 403
    assert (
        operator_client.get(reverse("admin:ordering_order_delete", args=[order.pk])).status_code
        == 403
    )


@pytest.mark.parametrize("model", ["auth_user", "authtoken_tokenproxy"])
def test_users_and_tokens_are_managed_in_the_admin(operator_client, model):
    assert operator_client.get(reverse(f"admin:{model}_changelist")).status_code == 200


def test_a_buyer_without_staff_rights_is_sent_to_the_login_page(client, buyer):
    client.force_login(buyer)

    response = client.get(CHANGELIST)

    assert response.status_code == 302
    assert "/admin/login/" in response.headers["Location"]


@pytest.mark.parametrize(
    "model",
    [
        "fraud_fraudassessment",
        "fraud_blockedbuyer",
        "billing_charge",
        "fakegateway_fakegatewaycharge",
        "fakegateway_fakegatewayfault",
        "messaging_outboxmessage",
        "django_celery_results_taskresult",
    ],
)
def test_pipeline_records_are_listed_in_the_admin(operator_client, model):
    assert operator_client.get(reverse(f"admin:{model}_changelist")).status_code == 200


def test_staff_block_a_buyer_in_the_admin(operator_client, buyer):
    response = operator_client.post(
        reverse("admin:fraud_blockedbuyer_add"), {"buyer": buyer.pk, "reason": "chargebacks"}
    )

    assert response.status_code == 302
    assert BlockedBuyer.objects.get().buyer == buyer
