"""A live system with webhooks: web, the pipeline's worker, the webhooks worker, relay and
dead-letter consumer, and receivers on loopback in the test process."""

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.authtoken.models import Token

from chaos.broker import wait_for_empty_work_queues
from chaos.http import ApiClient
from chaos.processes import ManagedProcess, celery_worker_argv
from chaos.receiver import OK, Receiver
from webhooks.models import WebhookDelivery

from ..factories import UserFactory
from ..live.system import LiveSystem, database_url, process_env
from ..live.wait import wait_until

# Retries that play out within a test: attempts at 0, 1, 3, 7, 15, 31, 51, 71 and 91 s (no
# jitter), so a receiver back after a minute's outage is reached with an attempt to spare.
WEBHOOK_ENV = {
    "WEBHOOK_ALLOW_LOOPBACK": "1",
    "WEBHOOK_RETRY_BASE_SECONDS": "1",
    "WEBHOOK_RETRY_MAX_SECONDS": "20",
    "WEBHOOK_MAX_ATTEMPTS": "9",
    "WEBHOOK_TIMEOUT_SECONDS": "1",
    "WEBHOOK_DEADLINE_SECONDS": "3",
}


@pytest.fixture(scope="package")
def live_system(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        db_url = database_url(connection.settings_dict)
    system = LiveSystem.start(db_url=db_url, broker_url=settings.CELERY_BROKER_URL, **WEBHOOK_ENV)
    webhooks = ManagedProcess(
        "webhooks",
        celery_worker_argv(hostname="webhooks-itest@%h", queues="webhooks", concurrency=4),
        process_env(db_url, settings.CELERY_BROKER_URL, **WEBHOOK_ENV),
    )
    try:
        webhooks.start()
        webhooks.wait_for_output(r"ready\.", timeout=60)
    except BaseException:
        webhooks.stop()
        system.stop()
        raise
    system.webhooks = webhooks
    yield system
    webhooks.stop()
    system.stop()


@pytest.fixture
def receiver():
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def system(live_system, transactional_db, receiver):
    """After the test: every receiver answers again, and every delivery has ended."""
    yield live_system
    receiver.set(OK)
    wait_until(
        lambda: not WebhookDelivery.objects.filter(status="PENDING").exists(),
        timeout=120,
        what="every webhook delivery to end",
    )
    live_system.wait_until_idle()
    wait_for_empty_work_queues(live_system.broker_url)


@pytest.fixture
def buyer(system):
    return UserFactory()


@pytest.fixture
def buyer_api(system, buyer) -> ApiClient:
    return ApiClient(system.base_url, Token.objects.create(user=buyer).key)
