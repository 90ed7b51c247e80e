"""/healthz and /readyz in process: anonymous, JSON, no database for /healthz, /readyz cached."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.test import Client

from health import checks


@pytest.fixture
def client() -> Client:
    return Client()


def test_healthz_answers_anonymously_without_the_database(client):
    # No django_db mark: any database access here would fail the test.
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
@pytest.mark.broker
def test_readyz_answers_anonymously_with_each_check(client):
    response = client.get("/readyz")

    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


@pytest.mark.django_db
@pytest.mark.broker
def test_readyz_is_503_naming_the_broker_when_it_is_down(client, settings, closed_port):
    settings.CELERY_BROKER_URL = f"amqp://guest:guest@127.0.0.1:{closed_port}/h"

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "failing": ["broker"],
        "checks": {"database": "ok", "broker": "unreachable"},
    }


def test_probes_are_not_redirected_to_https(client, settings):
    settings.SECURE_SSL_REDIRECT = True

    assert client.get("/healthz").status_code == 200
    assert client.get("/api/orders/").status_code == 301


@pytest.fixture
def counted_checks(monkeypatch) -> dict[str, int]:
    """The real checks, each counting its runs."""
    runs = dict.fromkeys(checks.CHECKS, 0)
    lock = threading.Lock()

    def counting(name, check):
        def run(*, timeout: float) -> None:
            with lock:
                runs[name] += 1
            check(timeout=timeout)

        return run

    for name, check in list(checks.CHECKS.items()):
        monkeypatch.setitem(checks.CHECKS, name, counting(name, check))
    return runs


@pytest.mark.django_db
@pytest.mark.broker
def test_a_burst_of_probes_runs_the_checks_once_per_cache_window(counted_checks, settings):
    settings.READINESS_CACHE_SECONDS = 1.0

    def probe(_) -> int:
        return Client().get("/readyz").status_code

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(probe, range(200)))
    elapsed = time.monotonic() - started

    assert statuses == [200] * 200
    windows = int(elapsed / settings.READINESS_CACHE_SECONDS) + 1
    assert 1 <= counted_checks["database"] <= windows, (counted_checks, elapsed)
    assert 1 <= counted_checks["broker"] <= windows, (counted_checks, elapsed)


@pytest.mark.django_db
@pytest.mark.broker
def test_a_broker_lost_shows_within_the_cache_window_and_the_timeout(client, settings, closed_port):
    settings.READINESS_CACHE_SECONDS, settings.READINESS_TIMEOUT_SECONDS = 2.0, 1.0
    assert client.get("/readyz").status_code == 200
    settings.CELERY_BROKER_URL = f"amqp://guest:guest@127.0.0.1:{closed_port}/h"
    lost = time.monotonic()

    assert client.get("/readyz").status_code == 200  # the answer of a moment ago
    while (response := client.get("/readyz")).status_code == 200:
        assert time.monotonic() - lost < 2.0 + 1.0 + 0.5, "the lost broker never showed"
        time.sleep(0.05)

    assert response.json()["failing"] == ["broker"]
