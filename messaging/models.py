"""What the messaging layer keeps in the database: the outbox and the applied-message log."""

import uuid

from django.db import models
from django.db.models import Q


class OutboxMessage(models.Model):
    """A message to publish, written in the same transaction as the change that causes it.

    Published right after commit; the relay (`manage.py relay_outbox`) publishes whatever is
    left. The row's id is the Celery task id, so every publish of it is the same message.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    task_name = models.CharField(max_length=200)
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
            # The relay's query: the oldest unpublished rows. Partial, so it stays small.
            models.Index(
                fields=["created_at"],
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
