"""The project as a whole: checks, migrations, and the real services the suite runs on."""

import os
import secrets
import subprocess
import sys
import uuid

import pytest
from django.conf import settings
from django.core.management import call_command
from kombu import Connection

from config.celery import app


def test_django_system_checks_are_clean():
    call_command("check", fail_level="WARNING")


@pytest.mark.django_db
def test_models_and_migrations_agree():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_celery_accepts_json_only():
    assert app.conf.accept_content == ["json"]
    assert app.conf.task_serializer == "json"


@pytest.mark.broker
def test_the_broker_the_suite_was_given_answers():
    """Fails, never skips, when RabbitMQ is missing: scripts/test.sh provides one."""
    name = f"orderflow-test-{uuid.uuid4()}"
    with Connection(app.conf.broker_url, connect_timeout=5) as connection:
        connection.ensure_connection(max_retries=1)
        with connection.SimpleQueue(name, queue_opts={"auto_delete": True}) as simple:
            simple.put({"ping": 1})
            message = simple.get(timeout=5)
            message.ack()
    assert message.payload == {"ping": 1}


def test_production_settings_pass_the_deployment_checks():
    """With DEBUG off and a real key, `check --deploy` finds nothing to warn about."""
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "orderflow.example.com",
    }
    for name in ("SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SESSION_COOKIE_SECURE"):
        env.pop(name, None)  # the defaults are what is checked

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_a_worker_runs_two_prefork_processes_per_core_unless_told():
    # What the sizing run measured best (docs/benchmarks/README.md); without WORKER_CONCURRENCY
    # in the environment, as a platform starts the Procfile's worker.
    if "WORKER_CONCURRENCY" not in os.environ:
        assert app.conf.worker_concurrency == 2 * len(os.sched_getaffinity(0))
    told = subprocess.run(
        [sys.executable, "-c", "from config.celery import app; print(app.conf.worker_concurrency)"],
        cwd=settings.BASE_DIR,
        env=os.environ | {"WORKER_CONCURRENCY": "3"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert told.stdout.split()[-1] == "3"


def test_without_a_secret_key_production_refuses_to_start():
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"} | {"DEBUG": "0"}

    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_error_reports_hide_the_passwords_in_connection_urls(settings, rf):
    from django.views.debug import get_default_exception_reporter_filter

    settings.DATABASE_URL = "postgres://app:db-secret@db.example:5432/orderflow"
    settings.CELERY_BROKER_URL = "amqp://app:broker-secret@mq.example:5672/orderflow"

    shown = str(get_default_exception_reporter_filter().get_safe_settings())

    assert "db-secret" not in shown
    assert "broker-secret" not in shown
    assert "ORDER_CURRENCIES" in shown  # the rest is still there to debug with
