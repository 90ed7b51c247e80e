"""GET /metrics in process: off without METRICS_TOKEN, a bearer token, the Prometheus format."""

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

TOKEN = "a-long-random-metrics-token"


@pytest.fixture
def client() -> Client:
    return Client()


@pytest.fixture
def with_token(settings):
    settings.METRICS_TOKEN = TOKEN


def test_without_metrics_token_configured_the_endpoint_does_not_exist(client, settings):
    settings.METRICS_TOKEN = ""

    response = client.get("/metrics", headers={"Authorization": "Bearer "})

    assert response.status_code == 404


def test_no_token_is_401_asking_for_a_bearer_token(client, with_token):
    response = client.get("/metrics")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "authorization",
    [f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", "Bearer x", f"Token {TOKEN}", TOKEN],
)
def test_a_wrong_token_is_refused(client, with_token, authorization):
    response = client.get("/metrics", headers={"Authorization": authorization})

    assert response.status_code in {401, 403}
    assert b"orderflow_" not in response.content


@pytest.mark.django_db
def test_the_right_token_gets_the_prometheus_text_format(client, with_token):
    client.get("/healthz")

    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=1.0.0; charset=utf-8"
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    assert families["orderflow_state_database_up"].samples[0].value == 1
    assert "orderflow_orders" in families
    # The parser names a counter's family without its _total suffix.
    requests = families["orderflow_http_requests"].samples
    assert any(
        sample.labels == {"method": "GET", "view": "healthz", "status": "200"} and sample.value >= 1
        for sample in requests
    )
