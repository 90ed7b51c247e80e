"""/healthz and /readyz served by the real web process, with its services there and not."""

import time

import pytest

from chaos.http import ApiClient, wait_for_http
from chaos.processes import ManagedProcess, gunicorn_argv
from chaos.proxy import free_port

from ..live.system import process_env

pytestmark = pytest.mark.broker


@pytest.fixture
def start_web():
    started = []

    def start(*, db_url: str, broker_url: str) -> ApiClient:
        port = free_port()
        env = process_env(db_url, broker_url, READINESS_TIMEOUT_SECONDS="1")
        web = ManagedProcess("web-health", gunicorn_argv(port=port, workers=1), env).start()
        started.append(web)
        wait_for_http(f"http://127.0.0.1:{port}/healthz")
        return ApiClient(f"http://127.0.0.1:{port}")

    yield start
    for web in started:
        web.stop()


def timed_get(client: ApiClient, path: str):
    started = time.monotonic()
    response = client.get(path)
    return response, time.monotonic() - started


def test_ready_when_the_live_system_runs(system):
    client = ApiClient(system.base_url)

    assert client.get("/healthz").body == {"status": "ok"}
    response = client.get("/readyz")
    assert response.status == 200
    assert response.body == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


def readyz_until(client: ApiClient, status: int, *, within: float):
    """/readyz polled until it answers `status`: each web process reuses its answer for
    READINESS_CACHE_SECONDS (1 s), then checks again within READINESS_TIMEOUT_SECONDS (2 s)."""
    deadline = time.monotonic() + within
    while (response := client.get("/readyz")).status != status:
        assert time.monotonic() < deadline, f"/readyz still {response.status} after {within}s"
        time.sleep(0.05)
    return response


def test_readyz_names_the_broker_when_the_web_process_loses_it(system):
    client = ApiClient(system.base_url)
    system.proxy.cut()  # the web process reaches RabbitMQ through this proxy

    response = readyz_until(client, 503, within=1 + 2 + 0.5)

    assert response.body["failing"] == ["broker"]
    assert client.get("/healthz").status == 200  # alive, just not ready
    system.proxy.restore()
    readyz_until(client, 200, within=1 + 2 + 0.5)


@pytest.mark.parametrize("database", ["closed", "silent"])
def test_a_database_that_is_gone_or_silent_is_named_within_the_timeout(
    start_web, closed_port, silent_port, database, settings
):
    port = silent_port if database == "silent" else closed_port
    client = start_web(
        db_url=f"postgres://postgres@127.0.0.1:{port}/orderflow",
        broker_url=settings.CELERY_BROKER_URL,
    )

    assert client.get("/healthz").body == {"status": "ok"}  # no database needed
    response, elapsed = timed_get(client, "/readyz")

    assert response.status == 503
    assert response.body["failing"] == ["database"]
    assert response.body["checks"] == {
        "database": "timeout" if database == "silent" else "unreachable",
        "broker": "ok",
    }
    assert elapsed < 2.5, f"/readyz took {elapsed:.1f}s with READINESS_TIMEOUT_SECONDS=1"


@pytest.mark.parametrize("broker", ["closed", "silent"])
def test_a_broker_that_is_gone_or_silent_is_named_within_the_timeout(
    start_web, closed_port, silent_port, broker, django_db_setup, django_db_blocker
):
    from django.db import connection

    from ..live.system import database_url

    with django_db_blocker.unblock():
        db_url = database_url(connection.settings_dict)
    port = silent_port if broker == "silent" else closed_port
    client = start_web(db_url=db_url, broker_url=f"amqp://guest:guest@127.0.0.1:{port}/h8")

    response, elapsed = timed_get(client, "/readyz")

    assert response.status == 503
    assert response.body["failing"] == ["broker"]
    assert response.body["checks"]["database"] == "ok"
    assert elapsed < 2.5, f"/readyz took {elapsed:.1f}s with READINESS_TIMEOUT_SECONDS=1"
