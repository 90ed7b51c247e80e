"""The project as a whole: checks, migrations, and the real services the suite runs on."""

import uuid

import pytest
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
