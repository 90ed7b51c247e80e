"""Fixtures of the billing tests: the fake gateway behaves as DESIGN.md's defaults say."""

import pytest

from messaging import outbox

from ..fakegateway.conftest import _predictable_fake_gateway  # noqa: F401 - autouse here too


@pytest.fixture(autouse=True)
def _no_real_broker(monkeypatch) -> None:
    """Nothing in billing publishes today; if it ever does, RabbitMQ is still not touched."""
    monkeypatch.setattr(outbox, "send_message", lambda **message: None)
