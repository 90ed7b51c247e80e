"""A trace crosses the outbox: the real relay and worker, reporting to a receiver on 127.0.0.1.

The test writes an order (and its outbox row) inside a Sentry transaction of its own; the
relay publishes the row, the worker screens and bills the order. Both report to a tiny HTTP
receiver standing in for Sentry, with their real SDK. The worker's transactions must carry
the trace id stored in the row: a trace the relay dropped or replaced would start anew.
"""

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sentry_sdk
from django.conf import settings
from django.db import connection
from sentry_sdk.envelope import Envelope

from chaos.processes import ManagedProcess, celery_worker_argv, python_argv
from messaging.models import OutboxMessage
from ordering import services
from ordering.models import Order
from ordering.state_machine import OrderStatus

from ..factories import UserFactory
from ..live.system import database_url, process_env
from ..live.wait import wait_until

pytestmark = [
    pytest.mark.broker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(180),
]


class Receiver(ThreadingHTTPServer):
    """Takes envelopes as Sentry's ingest would (POST /api/<project>/envelope/), keeps them."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _EnvelopeHandler)
        self.envelopes: list[Envelope] = []

    @property
    def dsn(self) -> str:
        return f"http://public@127.0.0.1:{self.server_address[1]}/1"

    def transactions(self) -> list[dict]:
        return [
            item.payload.json
            for envelope in list(self.envelopes)
            for item in envelope.items
            if item.type == "transaction"
        ]


class _EnvelopeHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # the name http.server calls
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.envelopes.append(Envelope.deserialize(body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args) -> None:  # quiet
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def relay_and_worker_reporting_to(receiver) -> Iterator[None]:
    env = process_env(
        database_url(connection.settings_dict),
        settings.CELERY_BROKER_URL,
        SENTRY_DSN=receiver.dsn,
        SENTRY_ENVIRONMENT="test",
        SENTRY_TRACES_SAMPLE_RATE="1",
    )
    worker = ManagedProcess("worker-sentry", celery_worker_argv(hostname="sentry@%h"), env)
    relay = ManagedProcess(
        "relay-sentry", python_argv("manage.py", "relay_outbox", "--interval", "0.2"), env
    )
    try:
        worker.start().wait_for_output(r"ready\.", timeout=60)
        relay.start().wait_for_output("relay started")
        yield
    finally:
        relay.stop()
        worker.stop()


def test_the_worker_continues_the_trace_stored_in_the_outbox_row(
    sentry, receiver, relay_and_worker_reporting_to
):
    with sentry_sdk.start_transaction(name="POST /api/orders/", op="http.server"):
        order = services.create_order(
            buyer=UserFactory(),
            product_name="Teapot",
            quantity=1,
            unit_price_minor=2000,
            currency="EUR",
        ).order
    row = OutboxMessage.objects.get(task_name="fraud.screen_order")
    trace_id, span_id, _ = row.headers["sentry-trace"].split("-")

    def transactions_of_the_trace() -> dict[str, dict]:
        return {
            event["transaction"]: event
            for event in receiver.transactions()
            if event["contexts"]["trace"]["trace_id"] == trace_id
        }

    steps = wait_until(
        lambda: (
            {"fraud.screen_order", "billing.charge_order"} <= set(transactions_of_the_trace())
            and transactions_of_the_trace()
        ),
        timeout=60,
        what=f"the worker's transactions in trace {trace_id} (test-artifacts/worker-sentry.log)",
    )

    # The fraud step's parent is the span that wrote its row; billing's row was written by
    # the worker inside the fraud step, and went through the outbox and the relay the same way.
    assert steps["fraud.screen_order"]["contexts"]["trace"]["parent_span_id"] == span_id
    assert steps["billing.charge_order"]["environment"] == "test"
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PROCESSED
