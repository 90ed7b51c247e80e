"""The scripted hostile requests (python -m chaos.hostile) against the real web process:
hostile API requests, password guessing on both login pages and a flood of readiness probes."""

import pytest
from axes.models import AccessAttempt
from rest_framework.authtoken.models import Token

from billing.models import Charge
from chaos import hostile
from chaos.http import ApiClient, BrowserSession
from fakegateway.models import FakeGatewayCharge
from messaging.models import DeadLetter, OutboxMessage
from ordering.models import Order, OrderEvent

from ..factories import UserFactory
from .test_pipeline import post_order, wait_for_terminal

pytestmark = pytest.mark.timeout(180)
TABLES = (Order, OrderEvent, OutboxMessage, Charge, FakeGatewayCharge, DeadLetter)
PASSWORD = "correct horse battery staple"  # the factory's


def database_rows() -> dict[str, list]:
    return {model.__name__: sorted(map(str, model.objects.values_list())) for model in TABLES}


def test_every_hostile_request_gets_a_4xx_and_changes_nothing(system, capsys, settings):
    victim = Token.objects.create(user=UserFactory()).key
    attacker = Token.objects.create(user=UserFactory()).key
    staff = UserFactory(is_staff=True)
    order_id = post_order(ApiClient(system.base_url, victim))
    wait_for_terminal(order_id)
    system.wait_until_idle()
    before = database_rows()

    exit_code = hostile.main(
        [
            *(system.base_url, "--token", attacker, "--victim-token", victim),
            *("--login-username", staff.username, "--login-guesses", "8"),
            *("--readiness-probes", "200"),
        ]
    )

    output = capsys.readouterr().out
    assert exit_code == 0, output
    assert "FAIL" not in output
    assert database_rows() == before
    assert len(hostile.hostile_requests(victim_order=str(order_id))) > 50
    assert output.count("password guess on /admin/login/: locked out") >= 8 - 5 + 1
    assert output.count("password guess on /api-auth/login/: locked out") == 8
    assert "200/200 concurrent /readyz probes answered 200" in output
    # The guesses locked the staff user out: the right password is refused now too.
    assert AccessAttempt.objects.filter(username=staff.username).exists()
    browser = BrowserSession(system.base_url)
    answer = browser.post_form("/admin/login/", {"username": staff.username, "password": PASSWORD})
    assert (answer.status, browser.signed_in) == (429, False)
    assert ApiClient(system.base_url, attacker).get("/api/orders/").status == 200
