"""The sweep for orders with no way forward, sent every few minutes by Celery beat."""

import logging

from django.conf import settings

from config.celery import app

from . import selectors

logger = logging.getLogger(__name__)

REPORTED_IDS = 20  # the log line names this many of them


@app.task(name="maintenance.sweep_stuck_orders")
def sweep_stuck_orders() -> int:
    """Report orders unchanged for STUCK_ORDER_MINUTES with no way forward; how many."""
    stuck = selectors.stuck_orders()
    count = stuck.count()
    if count:
        ids = stuck.values_list("id", flat=True)[:REPORTED_IDS]
        logger.error(
            "orders with no way forward: count=%s unchanged for %g minutes, no unpublished "
            "outbox row, no NEW dead letter (unless a message of theirs is still queued): %s",
            count,
            settings.STUCK_ORDER_MINUTES,
            " ".join(str(order_id) for order_id in ids),
        )
    return count
