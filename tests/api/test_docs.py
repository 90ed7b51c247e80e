"""API docs: the OpenAPI schema at /api/schema/ and Swagger UI at /api/docs/, offline."""

import re

import pytest
import yaml
from django.contrib.staticfiles import finders
from drf_spectacular.generators import SchemaGenerator

pytestmark = pytest.mark.django_db

OPERATIONS = {
    ("/api/orders/", "get"),
    ("/api/orders/", "post"),
    ("/api/orders/{id}/", "get"),
    ("/api/orders/{id}/cancel/", "post"),
    ("/api/webhooks/endpoints/", "get"),
    ("/api/webhooks/endpoints/", "post"),
    ("/api/webhooks/endpoints/{id}/", "get"),
    ("/api/webhooks/endpoints/{id}/disable/", "post"),
    ("/api/webhooks/endpoints/{id}/enable/", "post"),
    ("/api/webhooks/endpoints/{id}/rotate-secret/", "post"),
    ("/api/webhooks/deliveries/", "get"),
    ("/api/webhooks/deliveries/{id}/", "get"),
    ("/api/webhooks/deliveries/{id}/redeliver/", "post"),
}


@pytest.fixture
def served_schema(api_client) -> dict:
    response = api_client.get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_the_schema_is_public_openapi_3_with_every_operation(served_schema):
    assert served_schema["openapi"].startswith("3.")
    operations = {
        (path, method) for path, item in served_schema["paths"].items() for method in item
    }
    assert operations == OPERATIONS


def test_the_fuzzed_schema_is_the_served_one(served_schema):
    generated = SchemaGenerator().get_schema(request=None, public=True)

    assert yaml.safe_load(yaml.safe_dump(generated)) == served_schema


def test_every_operation_documents_auth_throttling_and_an_example_answer(served_schema):
    for path, method in OPERATIONS:
        operation = served_schema["paths"][path][method]
        assert {"401", "429"} <= set(operation["responses"]), (path, method)
        assert operation["summary"]
        successes = [a for code, a in operation["responses"].items() if code.startswith("2")]
        assert any(a["content"]["application/json"].get("examples") for a in successes), (
            path,
            method,
        )


def test_every_operation_documents_the_503_of_a_database_outage_with_retry_after(served_schema):
    for path, method in OPERATIONS:
        responses = served_schema["paths"][path][method]["responses"]
        for code in ("429", "503"):
            assert "Retry-After" in responses[code].get("headers", {}), (path, method, code)
    create = served_schema["paths"]["/api/orders/"]["post"]
    assert "Idempotency-Key" in create["responses"]["503"]["description"]


def test_the_create_body_refuses_unknown_fields_and_documents_its_bounds(served_schema):
    body = served_schema["components"]["schemas"]["OrderCreateInputRequest"]

    assert body["additionalProperties"] is False
    assert body["properties"]["quantity"] == {"type": "integer", "maximum": 1000, "minimum": 1}
    assert "pattern" in body["properties"]["unit_price"]


def test_swagger_ui_loads_only_local_files(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources, html
    assert not [s for s in sources if s.startswith(("http:", "https:", "//"))], sources
    for source in sources:
        if source.startswith("/static/"):
            assert finders.find(source.removeprefix("/static/")), source


def test_the_browsable_api_shows_a_signed_in_buyer_their_orders(client, buyer):
    client.force_login(buyer)

    response = client.get("/api/orders/", HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"Order List" in response.content
