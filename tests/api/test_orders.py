"""The orders API as a client sees it: status codes, bodies, headers and scoping."""

import uuid

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core import money
from ordering.models import Order
from ordering.state_machine import OrderStatus

from ..factories import OrderFactory, UserFactory

pytestmark = pytest.mark.django_db
S = OrderStatus
ORDERS = "/api/orders/"
VALID = {"product_name": "Widget", "quantity": 3, "unit_price": "19.99", "currency": "USD"}


def detail_url(order_id) -> str:
    return f"{ORDERS}{order_id}/"


# --- create ---------------------------------------------------------------------------------


def test_create_answers_201_with_the_pending_order_and_its_location(buyer_client, buyer):
    response = buyer_client.post(ORDERS, VALID, format="json")

    assert response.status_code == 201, response.data
    order = Order.objects.get()
    assert order.buyer == buyer
    assert response.data["id"] == str(order.id)
    assert response.data["status"] == "PENDING"
    assert response.data["total"] == "59.97"
    assert response.headers["Location"] == f"http://testserver{detail_url(order.id)}"


@pytest.mark.parametrize(
    ("posted", "minor", "shown"),
    [("0.1", 10, "0.10"), ("19.99", 1999, "19.99"), ("1000000", 100_000_000, "1000000.00")],
)
def test_a_price_is_stored_in_cents_and_read_back_as_a_decimal_string(
    buyer_client, posted, minor, shown
):
    body = VALID | {"quantity": 1, "unit_price": posted}

    response = buyer_client.post(ORDERS, body, format="json")

    assert response.status_code == 201, response.data
    order = Order.objects.get()
    assert (order.unit_price_minor, order.total_minor) == (minor, minor)
    shown_again = buyer_client.get(detail_url(order.id)).data
    assert response.data["unit_price"] == response.data["total"] == shown
    assert (shown_again["unit_price"], shown_again["total"]) == (shown, shown)


def test_a_currency_without_cents_takes_whole_prices_only(buyer_client, monkeypatch):
    """What adding such a currency (say JPY) to core.money would do, shown with USD."""
    monkeypatch.setitem(money._EXPONENTS, "USD", 0)

    refused = buyer_client.post(ORDERS, VALID | {"unit_price": "12.50"}, format="json")
    accepted = buyer_client.post(ORDERS, VALID | {"unit_price": "1250"}, format="json")

    assert refused.status_code == 400
    assert refused.data["unit_price"][0].code == "max_decimal_places"
    assert accepted.status_code == 201, accepted.data
    assert (accepted.data["unit_price"], accepted.data["total"]) == ("1250", "3750")
    assert Order.objects.get().total_minor == 3750


def test_create_without_currency_uses_the_default(buyer_client, settings):
    body = {k: v for k, v in VALID.items() if k != "currency"}

    response = buyer_client.post(ORDERS, body, format="json")

    assert response.status_code == 201
    assert response.data["currency"] == settings.ORDER_DEFAULT_CURRENCY


def test_create_twice_with_one_idempotency_key_returns_the_same_order(buyer_client):
    first = buyer_client.post(ORDERS, VALID, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    again = buyer_client.post(ORDERS, VALID, format="json", HTTP_IDEMPOTENCY_KEY="key-1")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.data["id"] == first.data["id"]
    assert again.headers["Location"] == first.headers["Location"]
    assert Order.objects.count() == 1


def test_create_with_a_used_idempotency_key_and_another_body_is_422(buyer_client):
    buyer_client.post(ORDERS, VALID, format="json", HTTP_IDEMPOTENCY_KEY="key-1")

    response = buyer_client.post(
        ORDERS, VALID | {"quantity": 4}, format="json", HTTP_IDEMPOTENCY_KEY="key-1"
    )

    assert response.status_code == 422
    assert response.data["code"] == "idempotency_key_reused"
    assert Order.objects.count() == 1


def test_one_idempotency_key_is_separate_per_buyer(buyer_client, other_buyer):
    other = APIClient()
    other.force_authenticate(other_buyer)

    mine = buyer_client.post(ORDERS, VALID, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    theirs = other.post(ORDERS, VALID, format="json", HTTP_IDEMPOTENCY_KEY="key-1")

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.data["id"] != theirs.data["id"]


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "naïve"])
def test_a_malformed_idempotency_key_is_400(buyer_client, key):
    response = buyer_client.post(ORDERS, VALID, format="json", HTTP_IDEMPOTENCY_KEY=key)

    assert response.status_code == 400
    assert "Idempotency-Key" in response.data
    assert Order.objects.count() == 0


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("product_name", "", "blank"),
        ("product_name", "   ", "blank"),
        ("product_name", "x" * 201, "max_length"),
        ("product_name", None, "null"),
        ("product_name", "nul\x00byte", "null_characters_not_allowed"),
        ("product_name", ["a"], "invalid"),
        ("product_name", 123, "invalid"),
        ("product_name", True, "invalid"),
        ("quantity", 0, "min_value"),
        ("quantity", 1001, "max_value"),
        ("quantity", 1.5, "invalid"),
        ("quantity", "three", "invalid"),
        ("quantity", 10**30, "max_value"),
        ("quantity", None, "null"),
        ("unit_price", "0", "min_value"),
        ("unit_price", "-5", "invalid"),
        ("unit_price", 12.5, "invalid"),
        ("unit_price", " 1.00", "invalid"),
        ("unit_price", "1000000.01", "max_value"),
        ("unit_price", "1.999", "max_decimal_places"),
        ("unit_price", "NaN", "invalid"),
        ("unit_price", "Infinity", "invalid"),
        ("unit_price", "1e400", "invalid"),
        ("unit_price", "1" * 400, "max_digits"),
        ("unit_price", "abc", "invalid"),
        ("currency", "eur", "invalid_choice"),
        ("currency", "XYZ", "invalid_choice"),
        ("currency", "EURO", "max_length"),
        ("currency", 978, "invalid_choice"),
    ],
)
def test_each_bad_field_gets_a_400_naming_the_field_and_the_rule(buyer_client, field, value, rule):
    response = buyer_client.post(ORDERS, VALID | {field: value}, format="json")

    assert response.status_code == 400, response.data
    assert list(response.data) == [field]
    assert response.data[field][0].code == rule
    assert Order.objects.count() == 0


@pytest.mark.parametrize("field", ["product_name", "quantity", "unit_price"])
def test_a_missing_required_field_is_400(buyer_client, field):
    body = {k: v for k, v in VALID.items() if k != field}

    response = buyer_client.post(ORDERS, body, format="json")

    assert response.status_code == 400
    assert response.data[field][0].code == "required"


def test_unknown_fields_are_400_and_named(buyer_client):
    response = buyer_client.post(
        ORDERS, VALID | {"status": "PROCESSED", "total": "0.01"}, format="json"
    )

    assert response.status_code == 400
    assert set(response.data) == {"status", "total"}
    assert Order.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        ("{not json", "application/json", 400),
        ("[1, 2]", "application/json", 400),
        ('"a string"', "application/json", 400),
        ("product_name=x", "application/x-www-form-urlencoded", 415),
        ("", "application/json", 400),
        ("[" * 20_000 + "]" * 20_000, "application/json", 400),  # past the recursion limit
        (b'{"product_name": "\xff\xfe"}', "application/json", 400),  # not UTF-8
        ("<order/>", "application/xml", 415),
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused(buyer_client, body, content_type, expected):
    response = buyer_client.generic("POST", ORDERS, body, content_type=content_type)

    assert response.status_code == expected
    assert Order.objects.count() == 0


def test_a_body_over_the_size_limit_is_413_and_never_parsed(buyer_client, settings):
    settings.MAX_REQUEST_BODY_BYTES = 1024
    body = '{"product_name": "%s", "quantity": 1, "unit_price": "1.00"}' % ("x" * 1024)

    response = buyer_client.generic("POST", ORDERS, body, content_type="application/json")

    assert response.status_code == 413
    assert response.json() == {
        "detail": "Request body too large: at most 1024 bytes.",
        "code": "too_large",
    }
    assert Order.objects.count() == 0


def test_a_body_within_the_size_limit_is_read(buyer_client, settings):
    settings.MAX_REQUEST_BODY_BYTES = 1024

    response = buyer_client.post(ORDERS, VALID, format="json")

    assert response.status_code == 201


# --- list -----------------------------------------------------------------------------------


def test_a_buyer_lists_only_their_own_orders(buyer_client, buyer, other_buyer):
    mine = {str(OrderFactory(buyer=buyer).id) for _ in range(3)}
    OrderFactory(buyer=other_buyer)

    response = buyer_client.get(ORDERS)

    assert response.status_code == 200
    assert response.data["count"] == 3
    assert {row["id"] for row in response.data["results"]} == mine


def test_staff_list_every_order(staff):
    OrderFactory.create_batch(2)
    client = APIClient()
    client.force_authenticate(staff)

    assert client.get(ORDERS).data["count"] == 2


def test_list_is_newest_first_and_paginated(buyer_client, buyer):
    orders = OrderFactory.create_batch(5, buyer=buyer)

    first_page = buyer_client.get(ORDERS, {"page_size": 2})
    last_page = buyer_client.get(ORDERS, {"page_size": 2, "page": 3})

    assert first_page.data["count"] == 5
    assert [row["id"] for row in first_page.data["results"]] == [
        str(orders[4].id),
        str(orders[3].id),
    ]
    assert first_page.data["next"] and not first_page.data["previous"]
    assert [row["id"] for row in last_page.data["results"]] == [str(orders[0].id)]


def test_the_largest_page_size_is_served(buyer_client, buyer):
    OrderFactory.create_batch(3, buyer=buyer)

    response = buyer_client.get(ORDERS, {"page_size": 100})

    assert response.status_code == 200
    assert len(response.data["results"]) == 3


@pytest.mark.parametrize("page_size", ["101", str(10**9), "0", "-1", "two", "1.5", "", "1e3"])
def test_a_page_size_out_of_bounds_is_400_naming_the_bounds(buyer_client, page_size):
    response = buyer_client.get(ORDERS, {"page_size": page_size})

    assert response.status_code == 400
    assert response.data == {"page_size": ["Must be a whole number from 1 to 100."]}


def test_a_page_past_the_end_is_404(buyer_client):
    assert buyer_client.get(ORDERS, {"page": 99}).status_code == 404


def test_list_filters_by_status(buyer_client, buyer):
    OrderFactory(buyer=buyer)
    approved = OrderFactory(buyer=buyer, status=S.APPROVED)

    response = buyer_client.get(ORDERS, {"status": "APPROVED"})

    assert [row["id"] for row in response.data["results"]] == [str(approved.id)]


def test_list_with_an_unknown_status_filter_is_400(buyer_client):
    response = buyer_client.get(ORDERS, {"status": "SHIPPED"})

    assert response.status_code == 400
    assert "status" in response.data


def test_list_costs_the_same_queries_for_one_order_or_many(
    buyer_client, buyer, django_assert_num_queries, settings
):
    settings.API_THROTTLE_USER_RATE = None  # its cost is pinned in tests/api/test_throttling.py
    OrderFactory.create_batch(15, buyer=buyer)

    # one count, one page
    with django_assert_num_queries(2):
        assert buyer_client.get(ORDERS).status_code == 200


# --- retrieve -------------------------------------------------------------------------------


def test_retrieve_shows_the_order_with_its_status_history(buyer_client, buyer):
    order = OrderFactory(buyer=buyer)
    buyer_client.post(f"{detail_url(order.id)}cancel/")

    response = buyer_client.get(detail_url(order.id))

    assert response.status_code == 200
    assert response.data["status"] == "CANCELED"
    assert [(e["from_status"], e["to_status"], e["version"]) for e in response.data["history"]] == [
        ("", "PENDING", 1),
        ("PENDING", "CANCELED", 2),
    ]


def test_retrieve_costs_two_queries(buyer_client, buyer, django_assert_num_queries, settings):
    settings.API_THROTTLE_USER_RATE = None  # its cost is pinned in tests/api/test_throttling.py
    order = OrderFactory(buyer=buyer)

    with django_assert_num_queries(2):  # the order, its history
        assert buyer_client.get(detail_url(order.id)).status_code == 200


def test_another_buyers_order_is_404_not_403(buyer_client, other_buyer):
    order = OrderFactory(buyer=other_buyer)

    assert buyer_client.get(detail_url(order.id)).status_code == 404
    assert buyer_client.post(f"{detail_url(order.id)}cancel/").status_code == 404
    order.refresh_from_db()
    assert order.status == S.PENDING


@pytest.mark.parametrize("order_id", [uuid.uuid4(), "not-a-uuid", "1", "%00"])
def test_an_unknown_or_malformed_order_id_is_404(buyer_client, order_id):
    assert buyer_client.get(detail_url(order_id)).status_code == 404


# --- cancel ---------------------------------------------------------------------------------


def test_cancel_of_a_pending_order_cancels_it(buyer_client, buyer):
    order = OrderFactory(buyer=buyer)

    response = buyer_client.post(f"{detail_url(order.id)}cancel/")

    assert response.status_code == 200
    assert response.data["status"] == "CANCELED"
    order.refresh_from_db()
    assert order.status == S.CANCELED


@pytest.mark.parametrize("status", [S.APPROVED, S.PROCESSED, S.CANCELED, S.CANCELED_FRAUD])
def test_cancel_of_an_order_that_is_not_pending_is_409_with_its_status(buyer_client, buyer, status):
    order = OrderFactory(buyer=buyer, status=status)

    response = buyer_client.post(f"{detail_url(order.id)}cancel/")

    assert response.status_code == 409
    assert response.data["status"] == status
    order.refresh_from_db()
    assert order.status == status


# --- authentication -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", ORDERS), ("post", ORDERS), ("get", detail_url(uuid.uuid4()))],
)
def test_anonymous_requests_are_401(api_client, method, path):
    response = getattr(api_client, method)(path, VALID if method == "post" else None, format="json")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"


def test_token_authentication_with_a_token_from_drf_create_token(api_client, buyer):
    call_command("drf_create_token", buyer.username)
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get(user=buyer).key}")

    response = api_client.post(ORDERS, VALID, format="json")

    assert response.status_code == 201
    assert Order.objects.get().buyer == buyer


def test_a_wrong_token_is_401(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    assert api_client.get(ORDERS).status_code == 401


def test_session_authentication_with_csrf(buyer):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(buyer)  # login() would call authenticate() without the request axes needs

    without_csrf = client.post(ORDERS, VALID, format="json")
    client.get("/api-auth/login/")
    with_csrf = client.post(
        ORDERS, VALID, format="json", HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value
    )

    assert without_csrf.status_code == 403
    assert with_csrf.status_code == 201
    assert client.get(ORDERS).data["count"] == 1


def test_users_are_created_by_factory_with_a_usable_password():
    user = UserFactory()
    assert user.check_password("correct horse battery staple")


@pytest.mark.parametrize("path", ["/api/nothing-here/", "/api/orders/not-a-uuid/cancel/"])
def test_an_unknown_api_url_is_a_json_404(buyer_client, path):
    response = buyer_client.get(path)

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_list_orders_by_total_or_oldest_first_when_asked(buyer_client, buyer):
    cheap = OrderFactory(buyer=buyer, unit_price_minor=100, quantity=1)
    dear = OrderFactory(buyer=buyer, unit_price_minor=9000, quantity=1)
    middle = OrderFactory(buyer=buyer, unit_price_minor=500, quantity=1)

    by_total = buyer_client.get(ORDERS, {"ordering": "-total"}).data["results"]
    oldest_first = buyer_client.get(ORDERS, {"ordering": "created_at"}).data["results"]

    assert [row["id"] for row in by_total] == [str(o.id) for o in (dear, middle, cheap)]
    assert [row["id"] for row in oldest_first] == [str(o.id) for o in (cheap, dear, middle)]


def test_list_filters_by_currency_and_creation_time(buyer_client, buyer):
    euro = OrderFactory(buyer=buyer, currency="EUR")
    OrderFactory(buyer=buyer, currency="USD")
    since = euro.created_at.isoformat()

    by_currency = buyer_client.get(ORDERS, {"currency": "EUR"}).data["results"]
    before = buyer_client.get(ORDERS, {"created_before": since}).data["results"]

    assert [row["id"] for row in by_currency] == [str(euro.id)]
    assert before == []


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("ordering", "buyer__password"),
        ("created_after", "yesterday"),
        ("status", "SHIPPED"),
        ("currency", ""),
        ("created_before", ""),
        ("ordering", ""),
    ],
)
def test_a_list_parameter_it_cannot_read_is_400_naming_it(buyer_client, parameter, value):
    response = buyer_client.get(ORDERS, {parameter: value})

    assert response.status_code == 400
    assert parameter in response.data


@pytest.mark.parametrize("page", ["", "0", "-1", "two", "1.5"])
def test_a_page_that_is_not_a_whole_number_is_400(buyer_client, page):
    response = buyer_client.get(ORDERS, {"page": page})

    assert response.status_code == 400
    assert "page" in response.data


@pytest.mark.parametrize(
    "moment", ["0001-01-01T00:00:00+01:00", "2026-13-01T00:00:00Z", "2026-01-01T25:00:00Z"]
)
def test_a_creation_time_the_database_cannot_take_is_400(buyer_client, moment):
    response = buyer_client.get(ORDERS, {"created_after": moment})

    assert response.status_code == 400
    assert "created_after" in response.data


def test_a_creation_time_with_a_far_offset_is_compared_in_utc(buyer_client, buyer):
    order = OrderFactory(buyer=buyer)

    # PostgreSQL refuses offsets past 15:59; Python, and so a client, may send up to 23:59.
    response = buyer_client.get(ORDERS, {"created_after": "1787-07-10T20:49:54+19:21"})

    assert [row["id"] for row in response.data["results"]] == [str(order.id)]
