"""`manage.py create_broker_users` on the real broker: idempotent, one user per role."""

import contextlib
import io
import secrets

import pytest
from django.core.management import CommandError, call_command
from kombu import Connection

from messaging.broker_users import BrokerUsersError, _ctl

from ..live.least_privilege import role_urls


def permissions_of(user: str, vhost: str) -> list[str]:
    listing = _ctl(None, "list_user_permissions", user)
    return [line for line in listing.splitlines() if line.startswith(vhost + "\t")]


def connects(url: str) -> bool:
    try:
        with Connection(url, connect_timeout=5) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception:  # refused login: kombu and py-amqp raise several kinds
        return False
    return True


@pytest.fixture
def beat_url(settings):
    """A beat user of this test's own, deleted afterwards."""
    url = role_urls(settings.CELERY_BROKER_URL)["beat"].replace("-beat:", "-beat-again:")
    yield url
    user = url.split("//")[1].split(":")[0]
    with contextlib.suppress(BrokerUsersError):  # the test failed before making it
        _ctl(None, "delete_user", user)


def test_running_it_again_changes_nothing_but_what_the_urls_changed(settings, beat_url):
    settings.BROKER_URLS = {"beat": beat_url}
    call_command("create_broker_users", stdout=io.StringIO())
    user, rest = beat_url.split("//")[1].split(":", 1)
    vhost = settings.CELERY_BROKER_URL.rsplit("/", 1)[1]
    first = permissions_of(user, vhost)

    new_password = secrets.token_hex(8)
    settings.BROKER_URLS = {"beat": beat_url.replace(rest.split("@")[0], new_password)}
    call_command("create_broker_users", stdout=io.StringIO())

    assert first == [f"{vhost}\t^$\t^(maintenance)$\t^$"]
    assert permissions_of(user, vhost) == first
    assert connects(settings.BROKER_URLS["beat"])
    assert not connects(beat_url)  # the old password no longer logs in


def test_roles_sharing_a_user_are_refused(settings):
    url = role_urls(settings.CELERY_BROKER_URL)["relay"]
    settings.BROKER_URLS = {"relay": url, "web": url}

    with pytest.raises(CommandError, match="share the broker user"):
        call_command("create_broker_users", stdout=io.StringIO())


def test_without_any_role_url_there_is_nothing_to_create(settings):
    settings.BROKER_URLS = {role: "" for role in settings.BROKER_ROLES}

    with pytest.raises(CommandError, match="No BROKER_URL_"):
        call_command("create_broker_users", stdout=io.StringIO())
