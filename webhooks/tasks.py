"""The task that sends a webhook delivery, on the `webhooks` queue and its own worker."""

import logging
import uuid
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from rest_framework import serializers

from config.celery import app
from messaging.pipeline import PipelineTask, UUIDText

from . import services
from .errors import DeliveryFailed, DeliveryNotFound

logger = logging.getLogger(__name__)


class DeliveryPayload(serializers.Serializer):
    delivery_id = UUIDText()


class WebhookDeliveryTask(PipelineTask):
    """Webhooks retry longer and further apart than the order pipeline (a receiver may be
    down for hours); a dead letter fails the delivery, a replay sends it again."""

    payload = DeliveryPayload
    retry_backoff = settings.WEBHOOK_RETRY_BASE_SECONDS
    retry_backoff_max = settings.WEBHOOK_RETRY_MAX_SECONDS
    max_retries = settings.WEBHOOK_MAX_ATTEMPTS - 1
    # A receiver that trickles its answer is cut off: after this the request is abandoned.
    soft_time_limit = settings.WEBHOOK_DEADLINE_SECONDS + 5
    time_limit = settings.WEBHOOK_DEADLINE_SECONDS + 15

    def log_ids(self, kwargs: dict) -> dict:
        return {**super().log_ids(kwargs), "delivery_id": kwargs.get("delivery_id")}

    def subject_of(self, kwargs: dict) -> uuid.UUID | None:
        return _delivery_id(kwargs)

    def on_dead_letter(self, *, kwargs: dict, reason: str) -> bool:
        if (delivery_id := _delivery_id(kwargs)) is None:
            return True
        return services.fail_delivery(delivery_id=delivery_id, reason=reason)

    def on_replay(self, *, kwargs: dict) -> None:
        if (delivery_id := _delivery_id(kwargs)) is None:
            raise DeliveryNotFound(f"The message names no delivery: {kwargs!r:.200}")
        services.resume_delivery(delivery_id=delivery_id)


@app.task(base=WebhookDeliveryTask, name=services.DELIVER_TASK)
def deliver(*, delivery_id: uuid.UUID) -> None:
    try:
        services.deliver(delivery_id=delivery_id)
    except SoftTimeLimitExceeded:
        raise DeliveryFailed("no complete answer in time") from None


@app.task(name="maintenance.prune_webhook_deliveries")
def prune_webhook_deliveries() -> int:
    """Deliveries that ended more than WEBHOOK_RETENTION_DAYS ago, deleted daily by beat."""
    deleted = services.prune_deliveries(older_than=timedelta(days=settings.WEBHOOK_RETENTION_DAYS))
    logger.info("pruned %s webhook deliveries", deleted)
    return deleted


def _delivery_id(kwargs: dict) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(kwargs.get("delivery_id")))
    except ValueError:
        return None
