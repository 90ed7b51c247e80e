"""Webhook endpoints API clients register, and the deliveries of events to them."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

MAX_URL_LENGTH = 2000
MAX_DESCRIPTION_LENGTH = 200
MAX_ERROR_LENGTH = 500


class WebhookEndpoint(models.Model):
    """Where an owner wants events of some types POSTed, and the secret that signs them."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="webhook_endpoints"
    )
    url = models.URLField(max_length=MAX_URL_LENGTH)
    description = models.CharField(max_length=MAX_DESCRIPTION_LENGTH, blank=True, default="")
    # The event types sent here (webhooks.events.EVENT_TYPES); never empty.
    event_types = models.JSONField()
    # Shown to the owner once, when created or rotated; kept because every request is signed.
    secret = models.CharField(max_length=100, editable=False)
    # The secret before the last rotation, still signing beside the new one until it expires.
    previous_secret = models.CharField(max_length=100, blank=True, default="", editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    is_active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=MAX_ERROR_LENGTH, blank=True, default="")
    disabled_at = models.DateTimeField(null=True, blank=True)
    # Deliveries that failed for good in a row; WEBHOOK_DISABLE_AFTER_FAILURES disables it.
    consecutive_failures = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "is_active"], name="webhook_endpoint_owner_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(is_active=True) | ~Q(disabled_reason=""),
                name="webhook_endpoint_disabled_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    """One event for one endpoint: sent until the endpoint takes it, or failed for good.

    Its id is also the id of the message that carries it (the outbox row, the Celery task,
    a dead letter), so a redelivery or a replay sends the same message again.
    """

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        DELIVERED = "DELIVERED", "Delivered"
        FAILED = "FAILED", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The same for every delivery of one event (to each endpoint, and again on redelivery):
    # what a receiver deduplicates on.
    event_id = models.UUIDField()
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries"
    )
    event_type = models.CharField(max_length=50)
    # What the event is about (for order events, the order) and that thing's version.
    subject_id = models.UUIDField()
    subject_version = models.PositiveIntegerField()
    # The JSON body, exactly as it is POSTed on every attempt.
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    # What went wrong, in our words plus at most a short escaped excerpt of the response.
    last_error = models.CharField(max_length=MAX_ERROR_LENGTH, blank=True, default="")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    redelivery_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        permissions = [("redeliver_webhookdelivery", "Can send a webhook delivery again")]
        indexes = [
            models.Index(fields=["endpoint", "-created_at"], name="webhook_delivery_endpoint_idx"),
            models.Index(fields=["status", "-created_at"], name="webhook_delivery_status_idx"),
            models.Index(fields=["subject_id"], name="webhook_delivery_subject_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["event_id", "endpoint"], name="webhook_delivery_once_per_endpoint"
            ),
            models.CheckConstraint(
                condition=Q(status="DELIVERED", delivered_at__isnull=False)
                | ~Q(status="DELIVERED"),
                name="webhook_delivery_delivered_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} -> {self.endpoint_id} ({self.status})"
