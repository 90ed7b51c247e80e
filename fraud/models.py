"""Fraud screening's records: the assessment of each order, and the blocklist."""

from django.conf import settings
from django.db import models


class FraudAssessment(models.Model):
    class Verdict(models.TextChoices):
        APPROVED = "APPROVED", "Approved"
        REJECTED = "REJECTED", "Rejected"

    order = models.OneToOneField(
        "ordering.Order", on_delete=models.CASCADE, related_name="fraud_assessment"
    )
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    # The sum of the weights of the rules that fired; REJECTED from REJECT_SCORE up.
    score = models.PositiveIntegerField()
    # One entry per rule that fired: {"rule": name, "detail": why}.
    reasons = models.JSONField(default=list, blank=True)
    message_id = models.UUIDField(null=True, blank=True)
    assessed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.order_id}: {self.verdict} ({self.score})"


class BlockedBuyer(models.Model):
    """A buyer whose orders are refused by fraud screening. Kept by staff in the admin."""

    buyer = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="fraud_block"
    )
    reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"blocked: {self.buyer}"
