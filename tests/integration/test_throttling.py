"""Throttle counts are shared by gunicorn's worker processes: the rate holds for the service."""

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token

from chaos.http import ApiClient, wait_for_http
from chaos.processes import ManagedProcess, gunicorn_argv
from chaos.proxy import free_port

from ..factories import UserFactory
from ..live.system import database_url, process_env

pytestmark = pytest.mark.timeout(60)
WORKERS = 3


@pytest.fixture
def throttled_web(transactional_db, settings):
    port = free_port()
    env = process_env(
        database_url(connection.settings_dict),
        settings.CELERY_BROKER_URL,
        API_THROTTLE_USER_RATE="5/minute",
        OUTBOX_PUBLISH_ON_COMMIT="0",
    )
    web = ManagedProcess("web-throttled", gunicorn_argv(port=port, workers=WORKERS), env).start()
    try:
        wait_for_http(f"http://127.0.0.1:{port}/api/orders/")
        yield f"http://127.0.0.1:{port}"
    finally:
        web.stop()


def test_the_user_rate_holds_across_worker_processes(throttled_web):
    api = ApiClient(throttled_web, Token.objects.create(user=UserFactory()).key)

    # A new connection per request: gunicorn's workers take them in turn, so with a count per
    # process most of these would pass.
    responses = [api.get("/api/orders/") for _ in range(12)]

    assert [r.status for r in responses] == [200] * 5 + [429] * 7
    assert all(int(r.headers["Retry-After"]) > 0 for r in responses[5:])
