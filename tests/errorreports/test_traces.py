"""A message written to the outbox carries the trace of what wrote it, for its consumer."""

import pytest
import sentry_sdk

from core import errorreports
from messaging import outbox
from messaging.models import OutboxMessage

pytestmark = pytest.mark.django_db


def test_a_message_written_in_a_traced_request_stores_its_trace(sentry):
    with sentry_sdk.start_transaction(name="POST /api/orders/", op="http.server") as request:
        message = outbox.enqueue(task_name="fraud.screen_order", kwargs={"order_id": "x"})

    stored = OutboxMessage.objects.get(pk=message.pk).headers
    trace_id, parent_span_id, sampled = stored["sentry-trace"].split("-")
    assert (trace_id, sampled) == (request.trace_id, "1")
    assert parent_span_id == request.span_id
    assert f"sentry-trace_id={request.trace_id}" in stored["baggage"]


def test_without_sentry_a_message_stores_no_trace():
    message = outbox.enqueue(task_name="fraud.screen_order", kwargs={"order_id": "x"})

    assert not {"sentry-trace", "baggage"} & set(OutboxMessage.objects.get(pk=message.pk).headers)


def test_a_stored_trace_is_published_where_the_workers_celery_integration_reads_it(sentry):
    stored = {"request_id": "r-1", "sentry-trace": "a" * 32 + "-" + "b" * 16 + "-1", "baggage": "x"}

    published = errorreports.headers_to_publish(stored)

    # The worker reads the trace from the nested `headers`; a retry resends that, request id too.
    assert published["headers"] == stored
    # This process's own integration must not replace the stored trace with its own.
    assert published["sentry-propagate-traces"] is False
    assert errorreports.headers_to_publish({"request_id": "r-1"}) == {"request_id": "r-1"}
