"""Billing's records: one Charge per order, and the fake gateway's ledger."""

from django.db import models


class Charge(models.Model):
    """Our side of charging an order: at most one per order, enforced by the database."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"  # the gateway has been (or is being) asked
        SUCCEEDED = "SUCCEEDED", "Succeeded"
        DECLINED = "DECLINED", "Declined"

    order = models.OneToOneField("ordering.Order", on_delete=models.PROTECT, related_name="charge")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # The gateway's id for the charge, or its reason for declining.
    gateway_reference = models.CharField(max_length=100, blank=True, default="")
    decline_reason = models.CharField(max_length=255, blank=True, default="")
    # Calls made to the gateway for this charge (retries reuse the same idempotency key).
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.order_id}: {self.amount} {self.currency} {self.status}"


class FakeGatewayCharge(models.Model):
    """The fake payment gateway's own ledger: what a real provider would hold on its side.

    One row per idempotency key, as a provider like Stripe keeps it; `order_ref` is the
    metadata we sent, so tests can count charges per order whatever key was used.
    """

    class Outcome(models.TextChoices):
        CHARGED = "CHARGED", "Charged"
        DECLINED = "DECLINED", "Declined"

    idempotency_key = models.CharField(max_length=255, unique=True)
    order_ref = models.CharField(max_length=100, db_index=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    reference = models.CharField(max_length=100, unique=True)
    # Requests made with this key, the first included: repeats are answered from this row.
    requests = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.reference} {self.outcome} {self.amount} {self.currency}"


class FakeGatewayFault(models.Model):
    """Faults the fake gateway plays back on its next `remaining` charge requests.

    For tests and demos only; the real gateway has faults of its own.
    """

    remaining = models.PositiveIntegerField(default=1)
    # Only for this order (its id); empty: any order.
    order_ref = models.CharField(max_length=100, blank=True, default="")
    # Time out after making the charge (the answer is lost) rather than before it.
    after_charge = models.BooleanField(default=False)
    # Kill the process making the request instead, as a crash in native code would.
    crash = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        if self.crash:
            return f"{self.remaining} crash(es)"
        return f"{self.remaining} timeout(s) {'after' if self.after_charge else 'before'} charging"
