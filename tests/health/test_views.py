"""/healthz and /readyz in process: anonymous, JSON, no database for /healthz."""

import pytest
from django.test import Client


@pytest.fixture
def client() -> Client:
    return Client()


def test_healthz_answers_anonymously_without_the_database(client):
    # No django_db mark: any database access here would fail the test.
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
@pytest.mark.broker
def test_readyz_answers_anonymously_with_each_check(client):
    response = client.get("/readyz")

    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


@pytest.mark.django_db
@pytest.mark.broker
def test_readyz_is_503_naming_the_broker_when_it_is_down(client, settings, closed_port):
    settings.CELERY_BROKER_URL = f"amqp://guest:guest@127.0.0.1:{closed_port}/h"

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "failing": ["broker"],
        "checks": {"database": "ok", "broker": "unreachable"},
    }


def test_probes_are_not_redirected_to_https(client, settings):
    settings.SECURE_SSL_REDIRECT = True

    assert client.get("/healthz").status_code == 200
    assert client.get("/api/orders/").status_code == 301
