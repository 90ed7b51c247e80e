"""Money as payment APIs keep it: an integer count of the currency's minor unit (cents).

Amounts are stored and passed around in minor units, which are exact on every database and
in every language; decimals in major units ("19.99") exist only at the edges: the API, the
settings people write, and text people read. Converting never goes through a float.
"""

from decimal import Decimal

# Digits after the decimal point, per ISO 4217, where it is not 2. ORDER_CURRENCIES are all
# 2 today; accepting yen is adding "JPY": 0 here.
_EXPONENTS: dict[str, int] = {}
DEFAULT_EXPONENT = 2


def exponent(currency: str) -> int:
    """How many decimal places `currency`'s major unit has (2 for EUR: 1 EUR = 100 cents)."""
    return _EXPONENTS.get(currency, DEFAULT_EXPONENT)


def to_minor(amount: Decimal, currency: str) -> int:
    """`amount` in major units as an integer of minor units; ValueError if it is not whole."""
    minor = Decimal(amount).scaleb(exponent(currency))
    if not minor.is_finite() or minor != minor.to_integral_value():
        raise ValueError(f"{amount} {currency} is not a whole number of minor units")
    return int(minor)


def to_major(minor: int, currency: str) -> Decimal:
    """`minor` units as a Decimal in major units, with the currency's places ("25.00")."""
    return Decimal(int(minor)).scaleb(-exponent(currency))


def display(minor: int, currency: str) -> str:
    """An amount for people and logs: "19.99 EUR"."""
    return f"{to_major(minor, currency)} {currency}"
