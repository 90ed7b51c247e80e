"""Fixtures of the billing tests: a fake gateway that behaves as DESIGN.md's defaults say."""

from decimal import Decimal

import pytest

from messaging import outbox


@pytest.fixture(autouse=True)
def _predictable_fake_gateway(settings) -> None:
    """No random timeouts and no latency unless a test asks for them, whatever the environment."""
    settings.BILLING_FAKE_DECLINE_OVER = Decimal("5000")
    settings.BILLING_FAKE_FAILURE_RATE = 0.0
    settings.BILLING_FAKE_LATENCY_MS = 0


@pytest.fixture(autouse=True)
def _no_real_broker(monkeypatch) -> None:
    """Nothing in billing publishes today; if it ever does, RabbitMQ is still not touched."""
    monkeypatch.setattr(outbox, "send_message", lambda **message: None)
