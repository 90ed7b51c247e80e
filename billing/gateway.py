"""The payment gateway: the protocol billing charges through, and the configured instance.

A real provider sits behind the same `charge()`; `BILLING_GATEWAY` names the class (by
default the fake one, fakegateway.gateway.FakeGateway).
"""

from dataclasses import dataclass
from functools import cache
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class GatewayCharge:
    reference: str


class PaymentGateway(Protocol):
    def charge(
        self, *, idempotency_key: str, amount_minor: int, currency: str, order_ref: str
    ) -> GatewayCharge:
        """Charge `amount_minor` (integer minor units: 1999 is 19.99 EUR, as payment APIs
        such as Stripe's take it) once per idempotency key; a repeat returns the first answer.

        Raises PaymentDeclined, GatewayTimeout or GatewayUnavailable.
        """


@cache
def get_gateway() -> PaymentGateway:
    return import_string(settings.BILLING_GATEWAY)()
