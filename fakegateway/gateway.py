"""A fake payment gateway for development, tests and demos: a Stripe-like stand-in.

It implements billing's PaymentGateway protocol and raises billing's gateway errors; select
it with BILLING_GATEWAY (the default).
"""

import os
import random
import time
import uuid

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from billing.errors import GatewayRequestRejected, GatewayTimeout, PaymentDeclined
from billing.gateway import GatewayCharge
from core import money

from .models import FakeGatewayCharge, FakeGatewayFault


class FakeGateway:
    """A Stripe-like stand-in with its ledger in the database (FakeGatewayCharge).

    Declines amounts above BILLING_FAKE_DECLINE_OVER, answers after BILLING_FAKE_LATENCY_MS,
    and times out at BILLING_FAKE_FAILURE_RATE or as FakeGatewayFault rows plan it. Half of
    the random timeouts happen after the charge was made (the answer is lost), which is what
    makes idempotency keys necessary.
    """

    def charge(
        self, *, idempotency_key: str, amount_minor: int, currency: str, order_ref: str
    ) -> GatewayCharge:
        if settings.BILLING_FAKE_LATENCY_MS:
            time.sleep(settings.BILLING_FAKE_LATENCY_MS / 1000)
        timeout = self._planned_fault(order_ref) or self._random_timeout()
        if timeout == "crash":
            os._exit(70)  # no cleanup, no exception: the process is simply gone
        if timeout == "before":
            raise GatewayTimeout("fake gateway: timed out before charging")
        entry = self._record(idempotency_key, amount_minor, currency, order_ref)
        if timeout == "after":
            raise GatewayTimeout("fake gateway: charged, but the answer was lost")
        if entry.outcome == FakeGatewayCharge.Outcome.DECLINED:
            raise PaymentDeclined(f"card declined for {money.display(amount_minor, currency)}")
        return GatewayCharge(reference=entry.reference)

    @staticmethod
    def _random_timeout() -> str | None:
        if random.random() < settings.BILLING_FAKE_FAILURE_RATE:  # noqa: S311 - not crypto
            return random.choice(["before", "after"])  # noqa: S311
        return None

    @staticmethod
    def _planned_fault(order_ref: str) -> str | None:
        if not FakeGatewayFault.objects.filter(remaining__gt=0).exists():
            return None  # the usual case: one cheap read, no lock
        with transaction.atomic():
            fault = (
                FakeGatewayFault.objects.select_for_update(skip_locked=True)
                .filter(Q(order_ref="") | Q(order_ref=order_ref), remaining__gt=0)
                .order_by("created_at")
                .first()
            )
            if fault is None:
                return None
            fault.remaining -= 1
            fault.save(update_fields=["remaining"])
        return "crash" if fault.crash else "after" if fault.after_charge else "before"

    def _record(
        self, key: str, amount_minor: int, currency: str, order_ref: str
    ) -> FakeGatewayCharge:
        """The provider's side, committed on its own like a remote service's would be."""
        outcome = (
            FakeGatewayCharge.Outcome.DECLINED
            # Compared in major units, where the setting is: exact, whatever its decimals.
            if money.to_major(amount_minor, currency) > settings.BILLING_FAKE_DECLINE_OVER
            else FakeGatewayCharge.Outcome.CHARGED
        )
        try:
            with transaction.atomic():
                entry = FakeGatewayCharge.objects.create(
                    idempotency_key=key,
                    order_ref=order_ref,
                    amount_minor=amount_minor,
                    currency=currency,
                    outcome=outcome,
                    reference=f"ch_{uuid.uuid4().hex[:24]}",
                )
                return entry
        except IntegrityError:
            pass
        with transaction.atomic():
            entry = FakeGatewayCharge.objects.select_for_update().get(idempotency_key=key)
            if (entry.amount_minor, entry.currency) != (amount_minor, currency):
                raise GatewayRequestRejected(
                    f"idempotency key {key} was used for "
                    f"{money.display(entry.amount_minor, entry.currency)}"
                )
            entry.requests += 1
            entry.save(update_fields=["requests"])
        return entry
