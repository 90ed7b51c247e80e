"""Schemathesis against the API's OpenAPI schema: no 5xx, every answer matches the schema.

The schema is the one /api/schema/ serves (tests/api/test_docs.py checks that), generated
here without a request so it can be loaded at collection. Requests go through the WSGI app
in-process, inside the test's transaction. Bounded: a fixed number of generated requests
per operation, so the suite's time holds.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.config import SchemathesisConfig

from ..factories import OrderFactory, UserFactory

EXAMPLES_PER_OPERATION = 60

# A valid request may still be refused for what a schema cannot say: an Idempotency-Key
# reused with another body (422), a canceled order canceled again (409).
CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", 401, 404, 409, 422]}}}
)
schema = schemathesis.openapi.from_dict(
    SchemaGenerator().get_schema(request=None, public=True), config=CONFIG
)
schema.app = get_wsgi_application()


@pytest.fixture(autouse=True)
def _in_the_test_transaction(settings):
    # As Django's test client does: the WSGI handler would otherwise close the connection
    # that holds the test's transaction.
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    # Fuzzing sends hundreds of requests from one user: throttling is tested on its own.
    settings.API_THROTTLE_USER_RATE = None
    settings.API_THROTTLE_ANON_RATE = None
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def buyer_token(db) -> str:
    buyer = UserFactory()
    OrderFactory.create_batch(3, buyer=buyer)
    return Token.objects.create(user=buyer).key


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,
    # The same cases every run: a failure reproduces, and CI does not fail at random.
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_keeps_to_its_schema(case, buyer_token):
    # Behind the TLS-terminating router, as in production (settings redirect plain HTTP).
    headers = {"Authorization": f"Token {buyer_token}", "X-Forwarded-Proto": "https"}
    response = case.call(headers=headers)
    if _refused_webhook_target(case, response):
        return
    case.validate_response(response, headers=headers, transport_kwargs={"headers": headers})


# Where a webhook URL may point is decided by resolving it (webhooks.targets), and what a
# valid host name is by Django's URL validator, neither of which a schema can say: a URL of
# the right format may still be refused, with a 400 that says why.
REFUSED_TARGET_CODES = {"target_refused", "target_unresolvable"}


def _refused_webhook_target(case, response) -> bool:
    if (case.method, case.path) != ("POST", "/api/webhooks/endpoints/"):
        return False
    body = response.json() if response.status_code == 400 else {}
    return body.get("code") in REFUSED_TARGET_CODES or set(body) == {"url"}
