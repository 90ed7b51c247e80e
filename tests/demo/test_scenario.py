"""The demo's plan: every outcome at least once, in the shares asked for."""

from collections import Counter
from decimal import Decimal

import pytest

from demo import scenario
from ordering.state_machine import OrderStatus as S

EVERY = [S.PROCESSED, S.PAYMENT_FAILED, S.CANCELED_FRAUD, S.CANCELED, S.FAILED]


def kinds(*statuses):
    return [scenario.Kind(status, "") for status in statuses]


def test_fifty_orders_show_every_outcome_in_their_shares():
    planned = Counter(scenario.plan(orders=50, available=kinds(*EVERY), seed=1))

    assert planned == {
        S.PROCESSED: 27,
        S.PAYMENT_FAILED: 8,
        S.CANCELED_FRAUD: 8,
        S.CANCELED: 5,
        S.FAILED: 2,
    }


def test_a_few_orders_take_the_outcomes_in_order():
    assert Counter(scenario.plan(orders=3, available=kinds(*EVERY))) == {
        S.PROCESSED: 1,
        S.PAYMENT_FAILED: 1,
        S.CANCELED_FRAUD: 1,
    }


def test_without_dead_letters_nothing_is_planned_to_fail():
    planned = scenario.plan(orders=20, available=kinds(*EVERY[:-1]))

    assert len(planned) == 20
    assert S.FAILED not in planned


@pytest.mark.parametrize("status", [S.PROCESSED, S.PAYMENT_FAILED, S.CANCELED_FRAUD])
def test_amounts_fall_where_the_rules_send_them(settings, status):
    import random

    quantity, unit_price = scenario._amount_for(status, random.Random(0))
    total = quantity * unit_price

    assert 0 < unit_price <= scenario.MAX_UNIT_PRICE and 1 <= quantity <= 1000
    declined = total > settings.BILLING_FAKE_DECLINE_OVER
    fraud = total > settings.FRAUD_MAX_ORDER_AMOUNT
    assert (declined, fraud) == {
        S.PROCESSED: (False, False),
        S.PAYMENT_FAILED: (True, False),
        S.CANCELED_FRAUD: (True, True),
    }[status]


def test_a_fraud_amount_above_the_largest_unit_price_takes_a_larger_quantity(settings):
    settings.FRAUD_MAX_ORDER_AMOUNT = Decimal("2500000")
    import random

    quantity, unit_price = scenario._amount_for(S.CANCELED_FRAUD, random.Random(0))

    assert quantity == 3 and quantity * unit_price > Decimal("2500000")
