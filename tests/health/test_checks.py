"""The readiness checks against the real PostgreSQL and RabbitMQ, and against missing ones."""

import time

import pytest
from kombu.utils.url import parse_url

from health.checks import readiness

pytestmark = [pytest.mark.django_db, pytest.mark.broker]


def broker_at(url: str, port: int) -> str:
    parts = parse_url(url)
    return f"amqp://{parts['userid']}:{parts['password']}@127.0.0.1:{port}/h"


def test_ready_when_the_database_and_the_broker_answer():
    result = readiness(timeout=2)

    assert result.checks == {"database": "ok", "broker": "ok"}
    assert result.ready


def test_a_refused_broker_is_named_unreachable(settings, closed_port):
    settings.CELERY_BROKER_URL = broker_at(settings.CELERY_BROKER_URL, closed_port)

    started = time.monotonic()
    result = readiness(timeout=2)

    assert result.checks == {"database": "ok", "broker": "unreachable"}
    assert not result.ready and result.failing == ["broker"]
    assert time.monotonic() - started < 2.5


def test_a_broker_that_never_answers_is_named_timeout_within_the_limit(settings, silent_port):
    settings.CELERY_BROKER_URL = broker_at(settings.CELERY_BROKER_URL, silent_port)

    started = time.monotonic()
    result = readiness(timeout=1)
    elapsed = time.monotonic() - started

    assert result.failing == ["broker"]
    assert result.checks["broker"] in {"timeout", "unreachable"}
    assert result.checks["database"] == "ok"
    assert elapsed < 1.5, f"readiness took {elapsed:.1f}s with a 1s limit"
