"""Sentry in the test process, its envelopes kept in a list instead of sent anywhere."""

from collections.abc import Iterator

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.transport import Transport


class CapturingTransport(Transport):
    """The SDK's own transport hook: every envelope the client would send, kept."""

    def __init__(self, options=None) -> None:
        super().__init__(options)
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    @property
    def events(self) -> list[dict]:
        """The error events (transactions left out)."""
        return [
            item.payload.json
            for envelope in self.envelopes
            for item in envelope.items
            if item.type == "event"
        ]


@pytest.fixture
def sentry() -> Iterator[CapturingTransport]:
    """Reports on in this process, as config/sentry.py turns them on, but kept in a list."""
    transport = CapturingTransport()
    sentry_sdk.init(
        dsn="http://public@127.0.0.1:9/1",  # never contacted: the transport keeps everything
        transport=transport,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        traces_sample_rate=1.0,
    )
    try:
        yield transport
    finally:
        sentry_sdk.flush()
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)  # off again for the tests after
