"""The real system for integration tests: PostgreSQL, RabbitMQ, gunicorn, celery, the relay."""

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.authtoken.models import Token

from chaos.broker import wait_for_empty_work_queues
from chaos.http import ApiClient

from ..factories import UserFactory
from ..live.system import LiveSystem, database_url


@pytest.fixture(scope="package")
def live_system(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        db_url = database_url(connection.settings_dict)
    system = LiveSystem.start(db_url=db_url, broker_url=settings.CELERY_BROKER_URL)
    yield system
    system.stop()


@pytest.fixture
def system(live_system, transactional_db):
    """The live system; after the test, the broker is reachable again and all work is done."""
    yield live_system
    live_system.proxy.restore()
    live_system.wait_until_idle()
    wait_for_empty_work_queues(live_system.broker_url)


@pytest.fixture
def buyer_api(system) -> ApiClient:
    buyer = UserFactory()
    return ApiClient(system.base_url, Token.objects.create(user=buyer).key)
