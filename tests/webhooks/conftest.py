import pytest

from chaos.receiver import Receiver
from webhooks import services

from ..factories import UserFactory


@pytest.fixture(autouse=True)
def _loopback_targets(settings) -> None:
    """The receivers here listen on loopback, which production refuses."""
    settings.WEBHOOK_ALLOW_LOOPBACK = True
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    settings.WEBHOOK_DEADLINE_SECONDS = 2


@pytest.fixture
def receiver():
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def owner(db):
    return UserFactory()


@pytest.fixture
def endpoint(owner, receiver):
    return services.create_endpoint(
        owner=owner, url=receiver.url, event_types=["order.approved", "order.processed"]
    )
