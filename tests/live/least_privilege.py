"""A broker user and a database role per process, made for a test run and removed after.

Broker users are named after the run's vhost (`<vhost>-<role>`) and database roles with a
prefix of their own, so runs sharing one broker or one PostgreSQL server never meet.
"""

import contextlib
import io
import os
import secrets
import subprocess
from collections.abc import Iterator
from urllib.parse import quote, urlsplit, urlunsplit

from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from kombu.utils.url import parse_url

from chaos.processes import ROOT, python_argv
from config.processes import DATABASE_PROCESSES
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


@contextlib.contextmanager
def broker_users_made(admin_url: str) -> Iterator[dict[str, str]]:
    """role -> URL, the users made by `manage.py create_broker_users` (the default
    configuration: OUTBOX_PUBLISH_ON_COMMIT off), deleted at the end."""
    urls = role_urls(admin_url)
    try:
        with override_settings(BROKER_URLS=urls, OUTBOX_PUBLISH_ON_COMMIT=False):
            call_command("create_broker_users", stdout=io.StringIO())
        yield urls
    finally:
        for url in urls.values():
            with contextlib.suppress(BrokerUsersError):  # one the command never made
                _ctl(None, "delete_user", parse_url(url)["userid"])


def drop_database_role(cursor, user: str) -> None:
    """Drop a role and what it was granted, if it exists (DROP OWNED BY first)."""
    cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [user])
    if cursor.fetchone():
        cursor.execute(f"DROP OWNED BY {connection.ops.quote_name(user)}")
        cursor.execute(f"DROP ROLE {connection.ops.quote_name(user)}")


@contextlib.contextmanager
def database_role_env(owner_url: str) -> Iterator[dict[str, str]]:
    """DATABASE_URL_<PROCESS> for each process with a role, on the owner URL's server and
    database, for roles the release phase makes (`setup_database_roles`); dropped at the end."""
    prefix = f"orderflow_test_{os.getpid()}_{secrets.token_hex(4)}"
    owner = urlsplit(owner_url)
    users = {process: f"{prefix}_{process}" for process in DATABASE_PROCESSES}
    env = {
        f"DATABASE_URL_{process.upper()}": urlunsplit(
            owner._replace(
                netloc=f"{user}:{secrets.token_hex(12)}@{owner.hostname}:{owner.port or 5432}"
            )
        )
        for process, user in users.items()
    }
    try:
        yield env
    finally:
        connection.close()
        with connection.cursor() as cursor:
            for user in users.values():
                drop_database_role(cursor, user)
