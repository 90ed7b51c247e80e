"""Fixtures of the fraud tests: known limits, and no real broker behind the outbox."""

from decimal import Decimal

import pytest

from messaging import outbox


@pytest.fixture(autouse=True)
def _fraud_limits(settings) -> None:
    """The defaults of DESIGN.md, whatever the environment says; tests vary them as they need."""
    settings.FRAUD_MAX_ORDER_AMOUNT = Decimal("10000")
    settings.FRAUD_MAX_ORDERS_PER_HOUR = 20


@pytest.fixture(autouse=True)
def published(monkeypatch) -> list[dict]:
    """What the outbox would have published after commit; RabbitMQ is never touched."""
    sent: list[dict] = []
    monkeypatch.setattr(outbox, "send_message", lambda **message: sent.append(message))
    return sent
