"""Billing's records: one Charge per order."""

from django.db import models

from core import money


class Charge(models.Model):
    """Our side of charging an order: at most one per order, enforced by the database."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"  # the gateway has been (or is being) asked
        SUCCEEDED = "SUCCEEDED", "Succeeded"
        DECLINED = "DECLINED", "Declined"

    order = models.OneToOneField("ordering.Order", on_delete=models.PROTECT, related_name="charge")
    # In integer minor units of `currency` (core.money), as the gateway takes it.
    amount_minor = models.PositiveBigIntegerField()
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
        return f"{self.order_id}: {money.display(self.amount_minor, self.currency)} {self.status}"
