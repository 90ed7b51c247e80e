"""Page numbers and sizes a client may ask for on GET /api/orders/: anything else is a 400."""

import pytest

from ..factories import OrderFactory

pytestmark = pytest.mark.django_db
ORDERS = "/api/orders/"
# Each str.isdigit(), none 0-9: circled one, Arabic-Indic three, superscript two, fullwidth one,
# NKo one, mathematical double-struck one.
NOT_ASCII_DIGITS = ["\u2460", "\u0663", "\u00b2", "\uff11", "\u07c1", "\U0001d7d9"]


@pytest.mark.parametrize("value", NOT_ASCII_DIGITS)
@pytest.mark.parametrize("parameter", ["page", "page_size"])
def test_a_unicode_digit_is_400_naming_the_parameter(buyer_client, parameter, value):
    response = buyer_client.get(ORDERS, {parameter: value})

    assert response.status_code == 400
    assert response.data == {parameter: [response.data[parameter][0]]}
    assert "whole number" in response.data[parameter][0]


@pytest.mark.parametrize("parameter", ["page", "page_size"])
def test_a_number_too_long_to_read_is_400(buyer_client, parameter):
    response = buyer_client.get(ORDERS, {parameter: "9" * 5000})  # int() refuses > 4300 digits

    assert response.status_code == 400
    assert parameter in response.data


@pytest.mark.parametrize("parameter", ["page", "page_size"])
def test_a_parameter_given_twice_is_400(buyer_client, parameter):
    response = buyer_client.get(f"{ORDERS}?{parameter}=1&{parameter}=2")

    assert response.status_code == 400
    assert parameter in response.data


def test_ascii_page_and_size_still_page(buyer_client, buyer):
    OrderFactory.create_batch(3, buyer=buyer)

    response = buyer_client.get(ORDERS, {"page": "2", "page_size": "02"})

    assert response.status_code == 200
    assert len(response.data["results"]) == 1
    assert response.data["count"] == 3
