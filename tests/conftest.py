"""Shared fixtures. The suite runs on real PostgreSQL: it refuses to start on anything else."""

import socket
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from chaos.proxy import free_port

from .factories import UserFactory


def pytest_configure(config: pytest.Config) -> None:
    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        raise pytest.UsageError(
            f"The test suite needs PostgreSQL, but DATABASE_URL points at {engine}. "
            "Run scripts/test.sh, which finds or starts PostgreSQL and RabbitMQ, "
            "or set DATABASE_URL=postgres://..."
        )


# Packages whose every test runs on the real broker: marked `broker` for `-m broker`
# (.ci/run). A `pytestmark` in a conftest marks nothing, so the marker is added here.
BROKER_PACKAGES = ("integration", "broker_users", "webhooks_live")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    packages = [Path(__file__).parent / name for name in BROKER_PACKAGES]
    for item in items:
        if any(item.path.is_relative_to(package) for package in packages):
            item.add_marker(pytest.mark.broker)


@pytest.fixture(autouse=True)
def _static_files_without_collectstatic(settings) -> None:
    """Tests render pages without running collectstatic first."""
    settings.STORAGES = settings.STORAGES | {
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    }


@pytest.fixture(autouse=True)
def _outbox_left_to_the_relay(settings) -> None:
    """Tests outside tests/integration/ publish nothing to the shared broker.

    Their outbox rows stay in the database, where they can be asserted on; the integration
    tests run the real web, worker and relay processes, which publish as in production.
    """
    settings.OUTBOX_PUBLISH_ON_COMMIT = False


@pytest.fixture(autouse=True)
def _plain_http(settings) -> None:
    """The test client speaks plain HTTP; production redirects it to HTTPS (DEBUG off)."""
    settings.SECURE_SSL_REDIRECT = False


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    """Real hashers are slow on purpose; tests create many users."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def buyer(db):
    return UserFactory()


@pytest.fixture
def other_buyer(db):
    return UserFactory()


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def buyer_client(buyer) -> APIClient:
    client = APIClient()
    client.force_authenticate(buyer)
    return client


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on: connecting is refused at once."""
    return free_port()


@pytest.fixture
def silent_port():
    """A local port that accepts TCP connections (the kernel completes them) but never says a
    word: a hung server, or one behind a firewall. Only a timeout ends a wait for it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    yield listener.getsockname()[1]
    listener.close()
