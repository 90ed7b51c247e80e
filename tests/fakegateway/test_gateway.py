"""The fake payment gateway on its own: idempotency keys, declines, timeouts and latency."""

import time
import uuid
from decimal import Decimal

import pytest

from billing.errors import GatewayRequestRejected, GatewayTimeout, PaymentDeclined
from billing.gateway import get_gateway
from fakegateway.gateway import FakeGateway
from fakegateway.models import FakeGatewayCharge, FakeGatewayFault

pytestmark = pytest.mark.django_db
Outcome = FakeGatewayCharge.Outcome


def charge(key: str = "order-1", amount_minor: int = 1000, currency: str = "EUR"):
    return FakeGateway().charge(
        idempotency_key=key, amount_minor=amount_minor, currency=currency, order_ref=key
    )


def test_the_configured_gateway_is_the_fake_one():
    assert isinstance(get_gateway(), FakeGateway)


def test_a_charge_is_recorded_in_the_ledger_with_its_reference():
    result = charge(amount_minor=1234, currency="USD")

    entry = FakeGatewayCharge.objects.get()
    assert (entry.idempotency_key, entry.order_ref, entry.amount_minor, entry.currency) == (
        "order-1",
        "order-1",
        1234,
        "USD",
    )
    assert (entry.outcome, entry.requests) == (Outcome.CHARGED, 1)
    assert result.reference == entry.reference
    assert entry.reference.startswith("ch_")


def test_same_key_twice_charges_once_and_answers_with_the_same_reference():
    first = charge()
    again = charge()

    entry = FakeGatewayCharge.objects.get()
    assert first.reference == again.reference == entry.reference
    assert entry.requests == 2


@pytest.mark.parametrize(("amount_minor", "currency"), [(1001, "EUR"), (1000, "USD")])
def test_same_key_for_another_amount_or_currency_is_rejected(amount_minor, currency):
    charge(amount_minor=1000, currency="EUR")

    with pytest.raises(GatewayRequestRejected, match=r"was used for 10\.00 EUR"):
        charge(amount_minor=amount_minor, currency=currency)

    entry = FakeGatewayCharge.objects.get()
    assert (entry.amount_minor, entry.currency, entry.requests) == (1000, "EUR", 1)


def test_an_amount_above_the_decline_limit_is_declined_and_stays_declined(settings):
    settings.BILLING_FAKE_DECLINE_OVER = Decimal("100")

    charge(key="at-limit", amount_minor=10000)
    with pytest.raises(PaymentDeclined, match=r"card declined for 100\.01 EUR"):
        charge(key="over", amount_minor=10001)
    with pytest.raises(PaymentDeclined):
        charge(key="over", amount_minor=10001)

    assert dict(FakeGatewayCharge.objects.values_list("idempotency_key", "outcome")) == {
        "at-limit": Outcome.CHARGED,
        "over": Outcome.DECLINED,
    }
    assert FakeGatewayCharge.objects.get(idempotency_key="over").requests == 2


def test_failure_rate_one_always_times_out(settings):
    settings.BILLING_FAKE_FAILURE_RATE = 1.0

    for _ in range(20):
        with pytest.raises(GatewayTimeout):
            charge(key=str(uuid.uuid4()))

    # Half of the timeouts happen after charging: those charges exist, their answer was lost.
    assert set(FakeGatewayCharge.objects.values_list("outcome", flat=True)) <= {Outcome.CHARGED}


def test_latency_setting_delays_the_answer(settings):
    settings.BILLING_FAKE_LATENCY_MS = 50

    started = time.monotonic()
    charge()

    assert time.monotonic() - started >= 0.05


@pytest.mark.parametrize(("after_charge", "ledger_rows"), [(False, 0), (True, 1)])
def test_planned_faults_time_out_the_next_requests_then_stop(after_charge, ledger_rows):
    FakeGatewayFault.objects.create(remaining=2, after_charge=after_charge)

    for _ in range(2):
        with pytest.raises(GatewayTimeout):
            charge()
        assert FakeGatewayCharge.objects.count() == ledger_rows
    result = charge()

    entry = FakeGatewayCharge.objects.get()
    assert (entry.outcome, entry.reference) == (Outcome.CHARGED, result.reference)
    assert entry.requests == (3 if after_charge else 1)
    assert FakeGatewayFault.objects.get().remaining == 0
