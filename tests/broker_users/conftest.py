"""Broker users per role, made in the run's own vhost and deleted at the end.

Each user is named after the vhost (`<vhost>-<role>`), so runs sharing one broker never meet.
"""

import pytest
from django.conf import settings

from chaos.broker import reset_topology

from ..live.least_privilege import broker_users_made, release


@pytest.fixture(scope="package")
def broker_users() -> dict[str, str]:
    """role -> URL, the users made by `manage.py create_broker_users`, and the topology
    declared by the release's user through the real `manage.py setup_broker`."""
    admin_url = settings.CELERY_BROKER_URL
    with broker_users_made(admin_url) as urls:
        reset_topology(admin_url)  # what earlier tests left in the vhost goes
        release(urls)
        yield urls
