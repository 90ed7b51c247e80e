"""core.money: amounts in integer minor units, converted to and from decimals exactly."""

from decimal import Decimal

import pytest

from core import money


@pytest.mark.parametrize(
    ("amount", "minor"),
    [("0.01", 1), ("0.1", 10), ("19.99", 1999), ("1000000.00", 100_000_000), ("0", 0)],
)
def test_a_decimal_amount_becomes_whole_cents_and_back(amount, minor):
    assert money.to_minor(Decimal(amount), "EUR") == minor
    assert money.to_major(minor, "EUR") == Decimal(amount)
    assert str(money.to_major(minor, "EUR")) == f"{Decimal(amount):.2f}"


def test_amounts_far_beyond_a_floats_exact_cents_stay_exact():
    amount = Decimal("90071992547409.93")  # 2**53 + 1 cents: a float would round it
    assert money.to_minor(amount, "EUR") == 2**53 + 1
    assert money.to_major(2**53 + 1, "EUR") == amount


@pytest.mark.parametrize("amount", ["0.001", "19.995", "NaN", "Infinity", "-Infinity"])
def test_an_amount_that_is_not_a_whole_number_of_cents_is_refused(amount):
    with pytest.raises(ValueError, match="not a whole number of minor units"):
        money.to_minor(Decimal(amount), "EUR")


def test_every_accepted_currency_has_two_decimal_places(settings):
    assert {money.exponent(code) for code in settings.ORDER_CURRENCIES} == {2}


def test_a_currency_without_minor_units_is_one_entry(monkeypatch):
    monkeypatch.setitem(money._EXPONENTS, "JPY", 0)
    assert money.to_minor(Decimal("1500"), "JPY") == 1500
    assert str(money.to_major(1500, "JPY")) == "1500"
    with pytest.raises(ValueError):
        money.to_minor(Decimal("1500.5"), "JPY")


def test_an_amount_for_people_names_its_currency():
    assert money.display(3998, "EUR") == "39.98 EUR"
