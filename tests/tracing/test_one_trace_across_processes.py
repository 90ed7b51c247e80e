"""One trace across the real processes: gunicorn, the relay and a Celery worker, each with
OTEL_TRACES_EXPORTER=console, read back from their logs (one JSON line per span).

A package of its own: the integration suite's system runs without tracing, and its worker
must not be the one that takes this order.
"""

import json
import uuid

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.authtoken.models import Token

from chaos.broker import wait_for_empty_work_queues
from chaos.http import ApiClient
from chaos.processes import ManagedProcess
from ordering.models import Order
from ordering.state_machine import TERMINAL_STATUSES

from ..factories import UserFactory
from ..live.system import LiveSystem, database_url
from ..live.wait import wait_until

pytestmark = [
    pytest.mark.broker,
    pytest.mark.timeout(180),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(scope="module")
def traced_system(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        db_url = database_url(connection.settings_dict)
    system = LiveSystem.start(
        db_url=db_url, broker_url=settings.CELERY_BROKER_URL, OTEL_TRACES_EXPORTER="console"
    )
    yield system
    system.stop()


@pytest.fixture
def system(traced_system):
    yield traced_system
    traced_system.wait_until_idle()
    wait_for_empty_work_queues(traced_system.broker_url)


def spans_of(process: ManagedProcess) -> list[dict]:
    """The spans a process wrote to its log: the JSON lines that are spans, not log records."""
    spans = []
    for line in process.output().splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "trace_id" in (record.get("context") or {}):
            spans.append(record)
    return spans


def one(spans: list[dict], name: str) -> dict:
    named = [span for span in spans if span["name"] == name]
    assert len(named) == 1, (name, [span["name"] for span in spans])
    return named[0]


def service(span: dict) -> str:
    return span["resource"]["attributes"]["service.name"]


def test_an_order_is_one_trace_from_the_request_through_the_relay_and_both_tasks(system):
    api = ApiClient(system.base_url, Token.objects.create(user=UserFactory()).key)
    response = api.post(
        "/api/orders/", {"product_name": "Teapot", "quantity": 1, "unit_price": "25.00"}
    )
    assert response.status == 201, response.body
    order_id = uuid.UUID(response.body["id"])
    wait_until(
        lambda: Order.objects.filter(pk=order_id, status__in=TERMINAL_STATUSES).exists(),
        timeout=60,
        what="the order to finish",
    )
    assert Order.objects.get(pk=order_id).status == "PROCESSED"
    # The last task's span ends after its commit: wait for it in the worker's log.
    wait_until(
        lambda: any(s["name"] == "run/billing.charge_order" for s in spans_of(system.worker)),
        timeout=30,
        what="the billing task's span",
    )

    request = next(
        span
        for span in spans_of(system.web)
        if span["kind"] == "SpanKind.SERVER" and span["attributes"].get("http.method") == "POST"
    )
    relay, worker = spans_of(system.relay), spans_of(system.worker)
    chain = [
        request,
        one(relay, "apply_async/fraud.screen_order"),
        one(worker, "run/fraud.screen_order"),
        one(relay, "apply_async/billing.charge_order"),
        one(worker, "run/billing.charge_order"),
    ]

    assert [service(span) for span in chain] == [
        "orderflow-web",
        "orderflow-relay",
        "orderflow-worker",
        "orderflow-relay",
        "orderflow-worker",
    ]
    assert {span["context"]["trace_id"] for span in chain} == {request["context"]["trace_id"]}
    assert [span["parent_id"] for span in chain[1:]] == [
        span["context"]["span_id"] for span in chain[:-1]
    ]
