"""Trace context through the outbox: stored with the row, continued by the relay's publish.

In this process, spans go to the SDK's in-memory exporter; publishes go to the real RabbitMQ.
"""

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.db import connection, transaction
from kombu import Connection, Queue
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Tracer

from config import tracing as tracing_setup
from config.celery import app
from core import tracing
from messaging import outbox
from messaging.broker import BatchPublisher
from messaging.models import OutboxMessage
from messaging.topology import declare_topology

from ..live.system import database_url
from .test_publish_confirms import ACCEPTED

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(60)]


@dataclass
class Traced:
    spans: InMemorySpanExporter
    tracer: Tracer

    def publishes(self) -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if s.kind == SpanKind.PRODUCER]


@pytest.fixture
def traced() -> Iterator[Traced]:
    """Tracing on in this process as config.tracing.init turns it on, spans kept in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing_setup.instrument(provider)
    tracing.enable()
    yield Traced(spans=exporter, tracer=provider.get_tracer("tests"))
    tracing.disable()
    CeleryInstrumentor().uninstrument()
    provider.shutdown()


@pytest.fixture
def probe_task() -> Iterator[str]:
    """A task of the probe's name, registered as the relay's process has every task."""

    def probe(**_) -> None:
        pass

    app.task(name=ACCEPTED, shared=False)(probe)
    assert ACCEPTED in app.tasks
    yield ACCEPTED
    app.tasks.unregister(ACCEPTED)
    take_probe_headers()


def take_probe_headers() -> dict[str, dict]:
    """Remove the probe messages from the billing queue; their headers by message id."""
    taken = {}
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=5) as connection:
        declare_topology(connection)
        queue = Queue("billing", channel=connection.default_channel, no_declare=True)
        others = []
        while (message := queue.get()) is not None:
            if message.headers.get("task") == ACCEPTED:
                taken[message.headers["id"]] = message.headers
                message.ack()
            else:
                others.append(message)
        for message in others:
            message.reject(requeue=True)
    return taken


def parent_of(headers: dict) -> str:
    """The trace and span a message's traceparent names (version 00; flags left out)."""
    version, trace_id, span_id, _flags = headers["traceparent"].split("-")
    assert version == "00"
    return f"{trace_id}-{span_id}"


def ids(span) -> str:
    context = span.get_span_context()
    return f"{context.trace_id:032x}-{context.span_id:016x}"


def test_enqueue_inside_a_span_stores_that_spans_traceparent(traced):
    with traced.tracer.start_as_current_span("request") as span, transaction.atomic():
        outbox.enqueue(task_name="fraud.screen_order", kwargs={"order_id": "42"})

    assert parent_of(OutboxMessage.objects.get().headers) == ids(span)


@pytest.mark.broker
def test_the_relay_publishes_each_row_of_a_batch_in_the_trace_that_wrote_it(traced, probe_task):
    writers = {}
    for name in ("request A", "request B"):
        with traced.tracer.start_as_current_span(name) as span:
            row = outbox.enqueue(task_name=probe_task, kwargs={"order_id": "probe"})
        writers[str(row.id)] = span
    publisher = BatchPublisher()
    try:
        # Whatever is current in the relay is no parent of what it publishes.
        with traced.tracer.start_as_current_span("relay pass"):
            assert outbox.publish_pending(publisher=publisher) == 2
    finally:
        publisher.close()

    publishes = {span.attributes["messaging.message.id"]: span for span in traced.publishes()}
    assert set(publishes) == set(writers)
    for message_id, writer in writers.items():
        publish = publishes[message_id]
        assert publish.context.trace_id == writer.get_span_context().trace_id
        assert publish.parent.span_id == writer.get_span_context().span_id
    # What the worker continues: each message carries its own publish span as its parent.
    sent = take_probe_headers()
    assert {key: parent_of(headers) for key, headers in sent.items()} == {
        message_id: ids(span) for message_id, span in publishes.items()
    }


def test_with_tracing_off_enqueue_stores_no_trace_context():
    tracer = TracerProvider().get_tracer("tests")  # a span, but this process traces nothing
    with tracer.start_as_current_span("request"), transaction.atomic():
        outbox.enqueue(task_name="fraud.screen_order", kwargs={"order_id": "42"})

    assert not {"traceparent", "tracestate"} & set(OutboxMessage.objects.get().headers)


def test_with_tracing_off_nothing_of_opentelemetry_is_loaded():
    """A process started without OTEL_TRACES_EXPORTER: the web entry, a publish, an enqueue."""
    code = (
        "import sys, config.wsgi\n"
        "from core import tracing\n"
        "from messaging import broker, outbox\n"
        "assert not tracing.enabled() and tracing.propagation_headers() == {}\n"
        "with tracing.continued({'traceparent': '00-' + '1' * 32 + '-' + '2' * 16 + '-01'}):\n"
        "    pass\n"
        "loaded = sorted(name for name in sys.modules if name.startswith('opentelemetry'))\n"
        "assert not loaded, loaded\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env |= {"SECRET_KEY": "tests", "DATABASE_URL": database_url(connection.settings_dict)}
    result = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
