"""Broker users per role, made in the run's own vhost and deleted at the end.

Each user is named after the vhost (`<vhost>-<role>`), so runs sharing one broker never meet.
"""

import contextlib
import io
import os
import secrets
import subprocess
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from kombu.utils.url import parse_url

from chaos.broker import reset_topology
from chaos.processes import ROOT, python_argv
from messaging.broker_users import BrokerUsersError, _ctl


def role_urls(admin_url: str) -> dict[str, str]:
    """A URL per role on the admin URL's broker and vhost, each with a user of its own."""
    parts = parse_url(admin_url)
    vhost = parts["virtual_host"] or "/"
    host = f"{parts['hostname'] or '127.0.0.1'}:{parts['port'] or 5672}"
    return {
        role: f"amqp://{quote(f'{vhost}-{role}', safe='')}:{secrets.token_hex(8)}@{host}/"
        + quote(vhost, safe="")
        for role in settings.BROKER_ROLES
    }


def role_env(urls: dict[str, str]) -> dict[str, str]:
    """The environment that gives every process its role's URL (settings.BROKER_URLS)."""
    return {f"BROKER_URL_{role.upper()}": url for role, url in urls.items()}


def release(urls: dict[str, str]) -> None:
    """The release phase's broker step, `manage.py setup_broker`, as the release's user."""
    subprocess.run(  # noqa: S603 - our own command
        python_argv("manage.py", "setup_broker"),
        cwd=ROOT,
        env={**os.environ, **role_env(urls)},
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="package")
def broker_users() -> dict[str, str]:
    """role -> URL, the users made by `manage.py create_broker_users` (the default
    configuration: OUTBOX_PUBLISH_ON_COMMIT off), and the topology declared by the release's
    user through the real `manage.py setup_broker`."""
    admin_url = settings.CELERY_BROKER_URL
    urls = role_urls(admin_url)
    try:
        with override_settings(BROKER_URLS=urls, OUTBOX_PUBLISH_ON_COMMIT=False):
            call_command("create_broker_users", stdout=io.StringIO())
        reset_topology(admin_url)  # what earlier tests left in the vhost goes
        release(urls)
        yield urls
    finally:
        for url in urls.values():
            with contextlib.suppress(BrokerUsersError):  # one the command never made
                _ctl(None, "delete_user", parse_url(url)["userid"])
