"""Optional OpenTelemetry tracing, started by each process at its entry: web (config/wsgi.py),
worker (config/celery.py, in each prefork child), relay (manage.py relay_outbox).

Off unless OTEL_TRACES_EXPORTER names `otlp` (OTLP over HTTP, to OTEL_EXPORTER_OTLP_ENDPOINT)
or `console` (one JSON line per span on stdout); off, nothing of OpenTelemetry is imported.
The SDK reads its other standard variables itself (OTEL_EXPORTER_OTLP_HEADERS,
OTEL_TRACES_SAMPLER, OTEL_BSP_*...). OTEL_SERVICE_NAME defaults to orderflow-<process>.
"""

import os
import sys

from django.core.exceptions import ImproperlyConfigured

from core import tracing

EXPORTERS = {"otlp", "console"}


def exporters() -> set[str]:
    """The exporters OTEL_TRACES_EXPORTER names (comma-separated); none means off."""
    names = {
        name.strip().lower()
        for name in os.environ.get("OTEL_TRACES_EXPORTER", "").split(",")
        if name.strip()
    } - {"none"}
    if unknown := names - EXPORTERS:
        raise ImproperlyConfigured(
            f"OTEL_TRACES_EXPORTER names {', '.join(sorted(unknown))}: use otlp, console or none."
        )
    return names


def init(*, process: str, django: bool = False) -> bool:
    """Start tracing in this process if OTEL_TRACES_EXPORTER asks for it; True when on.

    Celery's instrumentation in every process (the relay's publishes, the worker's tasks);
    Django's too with `django`, before the WSGI application loads its middleware. Call it
    after any fork: the batch processor's export thread does not survive one.
    """
    names = exporters()
    if not names or tracing.enabled():
        return tracing.enabled()

    from opentelemetry import trace
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
    )

    service = os.environ.get("OTEL_SERVICE_NAME") or f"orderflow-{process}"
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    if "otlp" in names:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if "console" in names:
        # For reading spans as they happen (development, tests): written at once, one
        # compact JSON line per span, to the real stdout (Celery redirects sys.stdout).
        console = ConsoleSpanExporter(
            out=sys.__stdout__, formatter=lambda span: span.to_json(indent=None) + os.linesep
        )
        provider.add_span_processor(SimpleSpanProcessor(console))
    trace.set_tracer_provider(provider)
    instrument(provider, django=django)
    tracing.enable()
    return True


def instrument(provider, *, django: bool = False) -> None:
    """Celery's instrumentation (and Django's) on `provider`."""
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    from config.celery import app

    # The instrumentation finds a publish span again at after_task_publish only for a task
    # registered in the publishing process; for any other its span ends before the message
    # is written. The relay publishes by name (send_task) and imports no task module itself.
    app.loader.import_default_modules()
    CeleryInstrumentor().instrument(tracer_provider=provider)
    if django:
        from opentelemetry.instrumentation.django import DjangoInstrumentor

        DjangoInstrumentor().instrument(tracer_provider=provider)


def flush() -> None:
    """Export what is buffered, before a process that skips exit handlers (a prefork child) ends."""
    if tracing.enabled():
        from opentelemetry import trace

        trace.get_tracer_provider().force_flush()
