"""The fake gateway's own records: its ledger, and the faults planned for it.

Both started in billing and keep the tables they had there: renaming a table would break
the processes still running the old code while `release` migrates.
"""

from django.db import models

from core import money


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
    amount_minor = models.PositiveBigIntegerField()  # as Stripe keeps it: 1999 is 19.99
    currency = models.CharField(max_length=3)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    reference = models.CharField(max_length=100, unique=True)
    # Requests made with this key, the first included: repeats are answered from this row.
    requests = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "billing_fakegatewaycharge"

    def __str__(self) -> str:
        return f"{self.reference} {self.outcome} {money.display(self.amount_minor, self.currency)}"


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

    class Meta:
        db_table = "billing_fakegatewayfault"

    def __str__(self) -> str:
        if self.crash:
            return f"{self.remaining} crash(es)"
        return f"{self.remaining} timeout(s) {'after' if self.after_charge else 'before'} charging"
