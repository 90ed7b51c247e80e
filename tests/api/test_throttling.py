"""API throttling: per user and per anonymous address, 429 with Retry-After, shared counts.

`tests/integration/test_throttling.py` checks that the counts hold across gunicorn's workers.
"""

from datetime import UTC, datetime, timedelta
from unittest.mock import patch

import pytest
from django.db import connection
from django.db.models import F
from django.utils import timezone

from core.models import ApiRequestCount

from ..factories import OrderFactory, UserFactory

pytestmark = pytest.mark.django_db
ORDERS = "/api/orders/"


@pytest.fixture(autouse=True)
def _five_a_minute(settings):
    settings.API_THROTTLE_USER_RATE = "5/minute"
    settings.API_THROTTLE_ANON_RATE = "3/minute"


def test_a_user_over_the_rate_gets_429_with_retry_after(buyer_client):
    statuses = [buyer_client.get(ORDERS).status_code for _ in range(7)]

    assert statuses == [200] * 5 + [429] * 2
    refused = buyer_client.get(ORDERS)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert refused.json()["detail"].startswith("Request was throttled.")


def test_each_user_has_their_own_allowance(buyer_client, api_client):
    for _ in range(5):
        buyer_client.get(ORDERS)
    api_client.force_authenticate(UserFactory())

    assert buyer_client.get(ORDERS).status_code == 429
    assert api_client.get(ORDERS).status_code == 200


def test_creating_orders_counts_against_the_same_allowance(buyer_client):
    body = {"product_name": "Widget", "quantity": 1, "unit_price": "1.00"}
    statuses = [buyer_client.post(ORDERS, body, format="json").status_code for _ in range(6)]

    assert statuses == [201] * 5 + [429]


def test_off_turns_the_user_throttle_off(buyer_client, settings):
    settings.API_THROTTLE_USER_RATE = None

    assert {buyer_client.get(ORDERS).status_code for _ in range(8)} == {200}


def test_anonymous_clients_are_throttled_by_address(api_client):
    # The schema is public; anonymous requests elsewhere are refused (401) before throttling.
    statuses = [api_client.get("/api/schema/").status_code for _ in range(4)]

    assert statuses == [200] * 3 + [429]
    other_address = api_client.get("/api/schema/", REMOTE_ADDR="192.0.2.7")
    assert other_address.status_code == 200


def test_a_forged_forwarded_for_header_does_not_reset_the_anonymous_allowance(api_client):
    statuses = [
        api_client.get("/api/schema/", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code
        for n in range(4)
    ]

    assert statuses == [200] * 3 + [429]


def test_behind_one_trusted_proxy_the_client_address_is_the_one_it_saw(api_client, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    # The proxy appends the address it saw; what the client wrote before it is not trusted.
    for n in range(3):
        api_client.get("/api/schema/", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}, 10.0.0.1")

    assert api_client.get("/api/schema/", HTTP_X_FORWARDED_FOR="10.0.0.1").status_code == 429
    assert api_client.get("/api/schema/", HTTP_X_FORWARDED_FOR="10.0.0.2").status_code == 200


def test_the_counts_are_rows_in_the_database_shared_by_every_process(buyer_client, buyer):
    for _ in range(3):
        buyer_client.get(ORDERS)

    (counter,) = ApiRequestCount.objects.all()
    assert counter.key == f"throttle_user_{buyer.pk}"
    assert counter.count == 3


def test_windows_that_ended_are_deleted_when_a_new_one_starts(buyer_client, buyer):
    an_hour_ago = timezone.now() - timedelta(hours=1)
    ApiRequestCount.objects.create(key="throttle_user_999", window_start=an_hour_ago, count=4)

    buyer_client.get(ORDERS)

    assert [c.key for c in ApiRequestCount.objects.all()] == [f"throttle_user_{buyer.pk}"]


def test_a_new_window_starts_a_new_count(buyer_client, buyer):
    for _ in range(5):
        buyer_client.get(ORDERS)
    assert buyer_client.get(ORDERS).status_code == 429

    # The same requests a minute later: the next window.
    ApiRequestCount.objects.update(window_start=F("window_start") - timedelta(minutes=1))

    assert buyer_client.get(ORDERS).status_code == 200


def test_retry_after_is_the_time_left_in_the_window(buyer_client):
    for _ in range(5):
        buyer_client.get(ORDERS)

    with patch("time.time", return_value=60 * 1_000_000 + 45.5):
        ApiRequestCount.objects.update(count=5)
        ApiRequestCount.objects.update(window_start=datetime.fromtimestamp(60 * 1_000_000, tz=UTC))
        refused = buyer_client.get(ORDERS)

    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "15"


def test_a_counted_request_costs_one_query(
    buyer_client, buyer, settings, django_assert_num_queries
):
    OrderFactory(buyer=buyer)
    buyer_client.get(ORDERS)  # the window's first request also deletes ended windows
    settings.API_THROTTLE_USER_RATE = None
    with django_assert_num_queries(2):
        buyer_client.get(ORDERS)
    settings.API_THROTTLE_USER_RATE = "5/minute"

    with django_assert_num_queries(2 + 1):
        buyer_client.get(ORDERS)


def test_counting_inside_a_transaction_leaves_its_commit_synchronous(buyer_client):
    # The test runs inside a transaction, as a view would with ATOMIC_REQUESTS.
    buyer_client.get(ORDERS)

    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"


def test_a_shorter_window_starting_leaves_another_scopes_longer_window_alone(
    buyer_client, api_client, buyer, settings
):
    settings.API_THROTTLE_USER_RATE = "2/day"
    buyer_client.get(ORDERS)
    buyer_client.get(ORDERS)

    api_client.get("/api/schema/")  # the anonymous scope's first minute starts

    assert buyer_client.get(ORDERS).status_code == 429
