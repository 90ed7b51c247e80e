"""The fraud rules one by one, and assess() over all of them; no writes."""

from datetime import timedelta
from decimal import Decimal

import pytest

from fraud import rules
from fraud.models import FraudAssessment
from fraud.services import assess
from ordering.models import Order

from ..factories import BlockedBuyerFactory, OrderFactory, UserFactory

pytestmark = pytest.mark.django_db
Verdict = FraudAssessment.Verdict


def orders_of(buyer, count: int) -> list[Order]:
    return [OrderFactory(buyer=buyer) for _ in range(count)]


def placed_ago(orders: list[Order], age: timedelta, *, before: Order) -> None:
    Order.objects.filter(pk__in=[o.pk for o in orders]).update(created_at=before.created_at - age)


def test_rules_have_unique_names_and_each_alone_rejects():
    names = [rule.name for rule in rules.RULES]

    assert len(names) == len(set(names)) == 3
    assert all(rule.weight >= rules.REJECT_SCORE for rule in rules.RULES)


@pytest.mark.parametrize(
    ("total", "fires"),
    [("9999.99", False), ("10000.00", False), ("10000.01", True)],
)
def test_total_above_limit_fires_only_strictly_above_the_limit(settings, total, fires):
    settings.FRAUD_MAX_ORDER_AMOUNT = Decimal("10000")
    minor = int(Decimal(total) * 100)
    order = OrderFactory.build(quantity=1, unit_price_minor=minor, currency="USD")

    detail = rules.total_above_limit(order)

    assert (detail is not None) == fires
    if fires:
        assert detail == f"total {total} USD is above 10000"


def test_blocked_buyer_fires_with_the_block_reason():
    block = BlockedBuyerFactory(reason="chargebacks")

    assert rules.buyer_blocked(OrderFactory(buyer=block.buyer)) == "buyer is blocked: chargebacks"
    assert rules.buyer_blocked(OrderFactory()) is None


def test_blocked_buyer_without_a_reason_still_fires():
    block = BlockedBuyerFactory(reason="")

    detail = rules.buyer_blocked(OrderFactory(buyer=block.buyer))

    assert detail == "buyer is blocked: no reason given"


def test_the_order_one_over_the_hourly_limit_fires_and_the_one_at_the_limit_does_not(settings):
    settings.FRAUD_MAX_ORDERS_PER_HOUR = 3
    buyer = UserFactory()
    *_earlier, at_limit, over_limit = orders_of(buyer, 4)

    assert rules.too_many_orders_in_an_hour(at_limit) is None
    assert rules.too_many_orders_in_an_hour(over_limit) == (
        "4 orders in the hour up to this one, more than 3"
    )


def test_orders_older_than_an_hour_do_not_count(settings):
    settings.FRAUD_MAX_ORDERS_PER_HOUR = 3
    buyer = UserFactory()
    *earlier, order = orders_of(buyer, 4)
    placed_ago(earlier, timedelta(hours=1, seconds=1), before=order)

    assert rules.too_many_orders_in_an_hour(order) is None


def test_orders_placed_after_the_order_do_not_count(settings):
    """Rules judge an order as of when it was placed: a late screening gives the same verdict."""
    settings.FRAUD_MAX_ORDERS_PER_HOUR = 3
    buyer = UserFactory()
    first, *_later = orders_of(buyer, 5)

    assert rules.too_many_orders_in_an_hour(first) is None


def test_other_buyers_orders_do_not_count(settings):
    settings.FRAUD_MAX_ORDERS_PER_HOUR = 1
    orders_of(UserFactory(), 3)

    assert rules.too_many_orders_in_an_hour(OrderFactory()) is None


def test_assess_approves_an_ordinary_order_with_score_zero_and_no_reasons():
    assessment = assess(OrderFactory())

    assert (assessment.verdict, assessment.score, assessment.reasons) == (Verdict.APPROVED, 0, [])


def test_assess_lists_every_rule_that_fired_and_adds_their_weights(settings):
    settings.FRAUD_MAX_ORDER_AMOUNT = Decimal("10")
    block = BlockedBuyerFactory(reason="stolen card")

    assessment = assess(OrderFactory(buyer=block.buyer))

    assert assessment.verdict == Verdict.REJECTED
    assert assessment.score == 200
    assert assessment.reasons == [
        {"rule": "total_above_limit", "detail": "total 39.98 EUR is above 10"},
        {"rule": "buyer_blocked", "detail": "buyer is blocked: stolen card"},
    ]
