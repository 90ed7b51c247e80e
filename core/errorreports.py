"""Where the project speaks to Sentry itself, beyond what the Django and Celery integrations do.

Reports are on when config/sentry.py initialised the SDK in this process (SENTRY_DSN); until
then sentry_sdk is not even imported, and everything here does nothing and imports nothing.

Traces and the outbox: a message is published long after, and by another process than, the
request or task that wrote it (the relay), so the trace context goes with the outbox row, as
its `sentry-trace` and `baggage` headers (trace_headers(), called by messaging.outbox), and
is put where the worker's Celery integration reads it when the row is published
(headers_to_publish(), called by messaging.broker).
"""

import sys
from typing import Any

TRACE_HEADERS = ("sentry-trace", "baggage")


def active() -> bool:
    """Whether this process reports to Sentry."""
    sdk = sys.modules.get("sentry_sdk")
    return sdk is not None and sdk.get_client().is_active()


def trace_headers() -> dict[str, str]:
    """The current trace (of the request or task at hand) as message headers; {} when off."""
    if not active():
        return {}
    import sentry_sdk

    headers = {"sentry-trace": sentry_sdk.get_traceparent(), "baggage": sentry_sdk.get_baggage()}
    return {name: value for name, value in headers.items() if value}


def headers_to_publish(headers: dict[str, Any]) -> dict[str, Any]:
    """The headers to publish a stored message with, so that its consumer continues its trace.

    Celery puts the headers given to send_task at the top of the AMQP headers, but the Celery
    integration of the worker reads the trace from the nested `headers` header (where its
    own apply_async writes it, celery#4875), so the stored headers are copied there, all of
    them as that apply_async does: a worker that finds `headers` takes it for the message's
    own headers, which a retry sends again (the request id among them). And the stored trace
    is the message's: the publishing process's own integration would put the span it is in
    in its place (a request or task publishing right after its commit; an operator's replay
    request, for a row that keeps its first trace), so `sentry-propagate-traces` off tells
    it not to (it takes that header out before the message goes). The relay publishes
    outside any span, where the integration adds no trace of its own.
    """
    if not any(name in headers for name in TRACE_HEADERS):
        return headers
    published = {**headers, "headers": {k: v for k, v in headers.items() if k != "headers"}}
    if active():
        published["sentry-propagate-traces"] = False
    return published


def capture_message(
    message: str, *, tags: dict[str, Any], extras: dict[str, Any], fingerprint: list[str]
) -> None:
    """Send one error event; a no-op when reports are off."""
    if not active():
        return
    import sentry_sdk

    sentry_sdk.capture_message(
        message,
        level="error",
        tags={name: str(value) for name, value in tags.items() if value not in (None, "")},
        extras=extras,
        fingerprint=fingerprint,
    )
