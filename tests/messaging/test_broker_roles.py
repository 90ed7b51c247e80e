"""Which BROKER_URL_<PROCESS> each Procfile command connects with, and each role's permissions."""

import pytest
from django.conf import settings

from config.processes import process_of
from messaging.broker_users import role_permissions
from tests.test_docker_compose import procfile

EXPECTED = {
    "web": "web",
    "release": "release",
    "worker": "worker",
    "webhooks": "webhooks",
    "relay": "relay",
    "webhooks_relay": "relay",
    "deadletters": "deadletters",
    "beat": "beat",
}


@pytest.mark.parametrize(("process", "role"), EXPECTED.items())
def test_each_procfile_process_has_the_role_of_its_name(process, role):
    argv = procfile()[process].split()
    if argv[0] == "python":  # sys.argv of `python manage.py ...` starts at manage.py
        argv = argv[1:]

    assert process_of(argv) == role


@pytest.mark.parametrize(
    "argv",
    [
        ["/venv/bin/celery", "-A", "config", "inspect", "ping"],
        ["manage.py", "shell"],
        ["manage.py", "migrate"],
        ["/venv/bin/pytest", "tests"],
        [],
    ],
)
def test_anything_else_uses_the_shared_url(argv):
    assert process_of(argv) is None


def test_python_m_celery_worker_is_a_worker():
    argv = ["/venv/lib/python3.11/site-packages/celery/__main__.py", "-A", "config", "worker"]

    assert process_of(argv) == "worker"


def test_every_role_has_permissions():
    assert set(role_permissions(publish_on_commit=False)) == set(settings.BROKER_ROLES)


def test_publishing_on_commit_lets_web_and_workers_write_the_pipeline_only():
    on = role_permissions(publish_on_commit=True)
    off = role_permissions(publish_on_commit=False)

    for exchange in ("fraud", "billing", "maintenance", "webhooks"):
        assert on["web"].allows("write", exchange)
        assert on["webhooks"].allows("write", exchange)
        assert not off["web"].allows("write", exchange)
    for role in ("web", "worker", "webhooks"):
        assert not on[role].allows("write", "dead_letter")
        assert not on[role].allows("read", "billing") or role == "worker"
        assert not on[role].allows("configure", "fraud")
    assert not off["webhooks"].allows("write", "billing")
