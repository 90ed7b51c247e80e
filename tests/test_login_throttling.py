"""Password guessing on the admin's and the browsable API's login pages is locked out per
username and per client address (django-axes); staff see the lockouts and lift them."""

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import Client

from .factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
LOGIN_PAGES = ["/admin/login/", "/api-auth/login/"]
ATTEMPTS = "/admin/axes/accessattempt/"


def log_in(path: str, username: str, password: str, *, address: str = "198.51.100.7", **headers):
    """One login as a browser posts it; the status: 302 signed in, 200 refused, 429 locked."""
    client = Client(REMOTE_ADDR=address, **headers)
    return client.post(path, {"username": username, "password": password, "next": "/admin/"})


def guess(path: str, username: str, *, times: int, address: str = "198.51.100.7", **headers):
    return [
        log_in(path, username, f"guess-{n}", address=address, **headers).status_code
        for n in range(times)
    ]


@pytest.fixture
def staff():
    return UserFactory(is_staff=True)


def staff_with(*codenames: str) -> Client:
    user = UserFactory(is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("path", LOGIN_PAGES)
def test_guesses_at_one_username_lock_it_from_every_address(path, staff, settings):
    limit = settings.AXES_FAILURE_LIMIT
    statuses = [
        log_in(path, staff.username, "wrong", address=f"203.0.113.{n}").status_code
        for n in range(limit)
    ]

    assert statuses == [200] * (limit - 1) + [429]
    # Locked: the right password, from an address that never guessed, is refused too.
    assert log_in(path, staff.username, PASSWORD, address="192.0.2.99").status_code == 429


@pytest.mark.parametrize("path", LOGIN_PAGES)
def test_guesses_from_one_address_lock_it_for_every_username(path, staff, settings):
    limit = settings.AXES_FAILURE_LIMIT
    statuses = [log_in(path, f"someone-{n}", "wrong").status_code for n in range(limit)]

    assert statuses == [200] * (limit - 1) + [429]
    assert log_in(path, staff.username, PASSWORD).status_code == 429
    assert log_in(path, staff.username, PASSWORD, address="192.0.2.99").status_code == 302


def test_below_the_limit_the_right_password_still_signs_in(staff, settings):
    guess("/admin/login/", staff.username, times=settings.AXES_FAILURE_LIMIT - 1)

    assert log_in("/admin/login/", staff.username, PASSWORD).status_code == 302


def test_behind_the_router_each_forwarded_address_is_counted_on_its_own(staff, settings):
    # One router (API_TRUSTED_PROXIES=1): every request comes from its address, and the
    # client's is the last one it appended to X-Forwarded-For, as for the API's throttle.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    router = "10.0.0.1"
    forwarded = {"HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.5"}  # the first part is forgeable
    guess("/admin/login/", "nobody", times=settings.AXES_FAILURE_LIMIT, address=router, **forwarded)

    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.5"}
    elsewhere = {"HTTP_X_FORWARDED_FOR": "6.6.6.6, 192.0.2.8"}
    assert (
        log_in("/admin/login/", staff.username, PASSWORD, address=router, **elsewhere).status_code
        == 302
    )


def test_staff_who_may_view_attempts_see_the_lockout_and_others_do_not(staff, settings):
    guess("/admin/login/", staff.username, times=settings.AXES_FAILURE_LIMIT)

    page = staff_with("view_accessattempt").get(ATTEMPTS)

    assert page.status_code == 200
    assert staff.username in page.text and "Locked Out" in page.text
    assert staff_with().get(ATTEMPTS).status_code == 403


def test_staff_lift_a_lockout_in_the_admin_and_the_user_signs_in_again(staff, settings):
    guess("/admin/login/", staff.username, times=settings.AXES_FAILURE_LIMIT)
    assert log_in("/admin/login/", staff.username, PASSWORD).status_code == 429

    operator = staff_with("view_accessattempt", "delete_accessattempt")
    ids = [
        str(pk)
        for pk in AccessAttempt.objects.filter(username=staff.username).values_list("pk", flat=True)
    ]
    lifted = operator.post(
        ATTEMPTS, {"action": "delete_selected", "_selected_action": ids, "post": "yes"}
    )

    assert lifted.status_code == 302
    assert not AccessAttempt.objects.filter(username=staff.username).exists()
    assert log_in("/admin/login/", staff.username, PASSWORD).status_code == 302


def test_a_lockout_is_lifted_from_the_command_line(staff, settings):
    guess("/api-auth/login/", staff.username, times=settings.AXES_FAILURE_LIMIT)

    call_command("axes_reset_username", staff.username)

    assert log_in("/api-auth/login/", staff.username, PASSWORD).status_code == 302


def test_a_lockout_ends_after_the_cool_off(staff, settings, monkeypatch):
    guess("/admin/login/", staff.username, times=settings.AXES_FAILURE_LIMIT)
    assert log_in("/admin/login/", staff.username, PASSWORD).status_code == 429

    cool_off = settings.AXES_COOLOFF_TIME
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - cool_off)

    assert log_in("/admin/login/", staff.username, PASSWORD).status_code == 302


def test_axes_backend_comes_first_and_its_middleware_last(settings):
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"
    assert settings.MIDDLEWARE[-1] == "axes.middleware.AxesMiddleware"
