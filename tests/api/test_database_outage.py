"""A database that fails under an API request is a 503 with Retry-After, never a 500."""

import pytest
from django.db import InterfaceError, OperationalError, connection, connections
from rest_framework.test import APIClient

from chaos.proxy import free_port
from core.api.exceptions import api_exception_handler
from ordering.models import Order

ORDERS = "/api/orders/"
BODY = {"product_name": "Cup", "quantity": 1, "unit_price": "3.00"}


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("connection failed: Connection refused"),
        InterfaceError("connection already closed"),
    ],
)
def test_the_handler_answers_a_lost_database_with_503_and_retry_after(error, settings, caplog):
    settings.API_DATABASE_RETRY_AFTER_SECONDS = 7

    response = api_exception_handler(error, {"request": None, "view": None})

    assert response.status_code == 503
    assert response.data["code"] == "database_unavailable"
    assert "Idempotency-Key" in response.data["detail"]
    assert response.headers["Retry-After"] == "7"
    assert "database unavailable" in caplog.text


def test_the_handler_leaves_other_errors_to_django():
    assert api_exception_handler(RuntimeError("a bug"), {"request": None, "view": None}) is None


def _kill_the_test_connection() -> None:
    """Terminate this process's database session from another one, as an outage would."""
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    other = connections["default"].copy()  # a second, independent session
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()


@pytest.fixture
def killed_connection(transactional_db):
    _kill_the_test_connection()
    yield
    connection.close()  # the test client keeps Django from reconnecting by itself


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [("post", ORDERS, BODY), ("get", ORDERS, None)],
)
def test_a_request_whose_database_session_was_killed_is_503(
    buyer, killed_connection, method, path, data
):
    client = APIClient()
    client.force_authenticate(buyer)

    response = getattr(client, method)(path, data, format="json")

    assert response.status_code == 503, response.content
    assert response.json()["code"] == "database_unavailable"
    assert int(response.headers["Retry-After"]) > 0


def test_after_the_outage_the_same_key_creates_one_order(buyer, killed_connection):
    client = APIClient()
    client.force_authenticate(buyer)
    headers = {"HTTP_IDEMPOTENCY_KEY": "outage-1"}

    assert client.post(ORDERS, BODY, format="json", **headers).status_code == 503
    connection.close()
    first = client.post(ORDERS, BODY, format="json", **headers)
    again = client.post(ORDERS, BODY, format="json", **headers)

    assert (first.status_code, again.status_code) == (201, 200)
    assert Order.objects.filter(buyer=buyer).count() == 1


@pytest.fixture
def refused_connection(transactional_db):
    """The database moves to a port where nothing listens: every connection is refused."""
    port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = free_port()
    yield
    connection.settings_dict["PORT"] = port
    connection.close()


def test_a_request_whose_database_refuses_connections_is_503(buyer, refused_connection):
    client = APIClient()
    client.force_authenticate(buyer)

    response = client.post(ORDERS, BODY, format="json", HTTP_IDEMPOTENCY_KEY="refused-1")

    assert response.status_code == 503, response.content
    assert response.json()["code"] == "database_unavailable"
    assert response.headers["Retry-After"]
