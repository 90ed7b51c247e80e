"""Rotating SECRET_KEY: what the old key signed stays valid while it is in the fallbacks."""

import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.test import Client

from .factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_signed_in_under_the_old_key(settings) -> Client:
    settings.SECRET_KEY = "the-old-key-" + "x" * 50
    client = Client()
    client.force_login(UserFactory(is_staff=True))
    assert client.get("/admin/").status_code == 200
    return client


def test_a_session_signed_with_the_old_key_works_while_it_is_a_fallback(
    staff_signed_in_under_the_old_key, settings
):
    old = settings.SECRET_KEY
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "the-new-key-" + "y" * 50, [old]

    assert staff_signed_in_under_the_old_key.get("/admin/").status_code == 200
    # That use signed the session again with the new key: it outlives the fallback.
    settings.SECRET_KEY_FALLBACKS = []
    assert staff_signed_in_under_the_old_key.get("/admin/").status_code == 200


def test_a_session_signed_with_a_key_no_longer_listed_is_signed_out(
    staff_signed_in_under_the_old_key, settings
):
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "the-new-key-" + "y" * 50, []

    response = staff_signed_in_under_the_old_key.get("/admin/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_fallbacks_are_read_from_the_environment_comma_separated():
    code = "from django.conf import settings; print(settings.SECRET_KEY_FALLBACKS)"
    result = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code],
        cwd=django_settings.BASE_DIR,
        env=os.environ
        | {"DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY_FALLBACKS": "k1,k2"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert result.stdout.split("\n")[-2] == "['k1', 'k2']"
