"""The W3C trace context of a message: written into its outbox row, continued when published.

A message waits in the outbox between the transaction that wrote it and the relay that
publishes it, in another process: the trace of the request (or task) that caused it goes
with it in the row's headers (`traceparent`, `tracestate`), and the relay publishes it
inside that trace, so Celery's instrumentation puts the publish, and through its headers
the task, in the same trace. Only the trace context, never W3C `baggage`: other tools write
headers of their own beside these.

Tracing is switched on per process by config.tracing; until then (the default) both
functions return at once and OpenTelemetry is not even imported.
"""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

_enabled = False


def enable() -> None:
    """Called once a tracer provider is set for this process (config.tracing.init)."""
    global _enabled
    _enabled = True


def disable() -> None:
    global _enabled
    _enabled = False


def enabled() -> bool:
    return _enabled


def propagation_headers() -> dict[str, str]:
    """`traceparent` (and `tracestate`) of the current span, for a message's headers; empty
    when tracing is off or no span is current."""
    if not _enabled:
        return {}
    carrier: dict[str, str] = {}
    _propagator().inject(carrier)
    return carrier


@contextmanager
def continued(headers: Mapping[str, object] | None) -> Iterator[None]:
    """Runs the block in the trace a message's headers carry (a new trace when they carry
    none), whatever trace was current: each message of a batch keeps its own."""
    if not _enabled:
        yield
        return
    from opentelemetry import context

    carried = {key: value for key, value in (headers or {}).items() if isinstance(value, str)}
    token = context.attach(_propagator().extract(carried))
    try:
        yield
    finally:
        context.detach(token)


def _propagator():
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator()
