"""Housekeeping of the pipeline's bookkeeping, sent daily by Celery beat (CELERY_BEAT_SCHEDULE)."""

import logging
from datetime import timedelta

from django.conf import settings

from config.celery import app

from .retention import prune

logger = logging.getLogger(__name__)


@app.task(name="maintenance.prune_messages")
def prune_messages() -> dict[str, int]:
    """`manage.py prune_messages` with MESSAGE_RETENTION_DAYS: what it deleted, by kind."""
    deleted = prune(older_than=timedelta(days=settings.MESSAGE_RETENTION_DAYS))
    logger.info(
        "pruned what is older than %g days: %s",
        settings.MESSAGE_RETENTION_DAYS,
        ", ".join(f"{count} {kind}" for kind, count in deleted.items()),
    )
    return deleted
