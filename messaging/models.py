"""What the messaging layer keeps in the database: the outbox and the applied-message log."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from .topology import MAIN_LANE


class OutboxMessage(models.Model):
    """A message to publish, written in the same transaction as the change that causes it.

    Published right after commit; the relay (`manage.py relay_outbox`) publishes whatever is
    left. The row's id is the Celery task id, so every publish of it is the same message.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    task_name = models.CharField(max_length=200)
    # Which relay publishes it (messaging.topology.lane_of): webhook deliveries have their own.
    lane = models.CharField(max_length=50, default=MAIN_LANE)
    kwargs = models.JSONField(default=dict)
    headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)
    # Failed publish attempts and the last error, so a stuck message explains itself.
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["created_at"]
        indexes = [
            # The relay's query: the oldest unpublished rows of its lane. Partial, so it
            # stays small.
            models.Index(
                fields=["lane", "created_at"],
                condition=Q(published_at__isnull=True),
                name="outbox_unpublished_idx",
            ),
        ]

    def __str__(self) -> str:
        state = "published" if self.published_at else "unpublished"
        return f"{self.task_name} {self.id} ({state})"


class ProcessedMessage(models.Model):
    """A message a consumer has applied, recorded in the same transaction as its effects."""

    consumer = models.CharField(max_length=200)
    message_id = models.UUIDField()
    processed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["consumer", "message_id"], name="processed_message_once_per_consumer"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.consumer} applied {self.message_id}"


class DeadLetter(models.Model):
    """A message RabbitMQ dead-lettered, kept for an operator to read, replay or discard.

    One row per message id: a message that dies again after a replay is the same row with
    a higher death count.
    """

    class Status(models.TextChoices):
        NEW = "NEW", "New"
        # Its step had already been done by another copy: recorded, changes nothing.
        STALE = "STALE", "Stale"
        REPLAYED = "REPLAYED", "Replayed"
        DISCARDED = "DISCARDED", "Discarded"

    # The Celery task id (the outbox row's id), or "sha256:<digest of the body>" without one.
    message_id = models.CharField(max_length=255, unique=True)
    queue = models.CharField(max_length=200, help_text="The queue the message died in.")
    exchange = models.CharField(max_length=200, blank=True, default="")
    routing_key = models.CharField(max_length=255, blank=True, default="")
    task_name = models.CharField(max_length=200, blank=True, default="")
    # What the message was about, as its task class says (PipelineTask.subject_of): for a
    # step of an order, the order. Empty for foreign or undecodable messages.
    subject_id = models.UUIDField(null=True, blank=True, db_index=True)
    # From x-death: rejected (failed for good, or poison), delivery_limit (crashed the
    # worker on every delivery), expired, maxlen.
    reason = models.CharField(max_length=30)
    death_count = models.PositiveIntegerField(default=1)
    last_error = models.TextField(blank=True, default="")
    headers = models.JSONField(default=dict, blank=True)
    properties = models.JSONField(default=dict, blank=True)
    # The body exactly as it arrived, so a replay sends the same bytes.
    body = models.BinaryField()
    content_type = models.CharField(max_length=100, blank=True, default="")
    content_encoding = models.CharField(max_length=100, blank=True, default="")
    first_death_at = models.DateTimeField()
    last_death_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    replay_count = models.PositiveIntegerField(default=0)
    acted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_death_at"]
        indexes = [models.Index(fields=["status", "-last_death_at"], name="dead_letter_status_idx")]
        permissions = [
            ("replay_deadletter", "Can replay a dead letter to its original queue"),
            ("discard_deadletter", "Can discard a dead letter"),
        ]

    def __str__(self) -> str:
        return f"{self.task_name or 'message'} {self.message_id} ({self.reason}, {self.status})"
