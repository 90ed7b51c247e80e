"""The scripted hostile requests (python -m chaos.hostile) against the real web process."""

import pytest
from rest_framework.authtoken.models import Token

from billing.models import Charge
from chaos import hostile
from chaos.http import ApiClient
from fakegateway.models import FakeGatewayCharge
from messaging.models import DeadLetter, OutboxMessage
from ordering.models import Order, OrderEvent

from ..factories import UserFactory
from .test_pipeline import post_order, wait_for_terminal

pytestmark = pytest.mark.timeout(120)
TABLES = (Order, OrderEvent, OutboxMessage, Charge, FakeGatewayCharge, DeadLetter)


def database_rows() -> dict[str, list]:
    return {model.__name__: sorted(map(str, model.objects.values_list())) for model in TABLES}


def test_every_hostile_request_gets_a_4xx_and_changes_nothing(system, capsys):
    victim = Token.objects.create(user=UserFactory()).key
    attacker = Token.objects.create(user=UserFactory()).key
    order_id = post_order(ApiClient(system.base_url, victim))
    wait_for_terminal(order_id)
    system.wait_until_idle()
    before = database_rows()

    exit_code = hostile.main([system.base_url, "--token", attacker, "--victim-token", victim])

    output = capsys.readouterr().out
    assert exit_code == 0, output
    assert "FAIL" not in output
    assert database_rows() == before
    assert len(hostile.hostile_requests(victim_order=str(order_id))) > 50
