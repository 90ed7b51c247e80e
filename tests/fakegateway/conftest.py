"""Fixtures of the fake gateway's tests, and of billing's, which charge through it."""

from decimal import Decimal

import pytest


@pytest.fixture(autouse=True)
def _predictable_fake_gateway(settings) -> None:
    """No random timeouts and no latency unless a test asks for them, whatever the environment."""
    settings.BILLING_FAKE_DECLINE_OVER = Decimal("5000")
    settings.BILLING_FAKE_FAILURE_RATE = 0.0
    settings.BILLING_FAKE_LATENCY_MS = 0
