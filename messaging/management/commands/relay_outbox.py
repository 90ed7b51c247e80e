import logging
import signal
import time
from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections

from messaging.outbox import publish_pending

logger = logging.getLogger("messaging.relay")


class Command(BaseCommand):
    help = (
        "Publish the outbox messages left unpublished (broker down, process died), until stopped."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--interval", type=float, default=1.0, help="seconds between polls when idle"
        )
        parser.add_argument("--batch", type=int, default=100, help="rows per transaction")
        parser.add_argument(
            "--min-age",
            type=float,
            default=1.0,
            help="seconds a row must have waited, leaving fresh rows to the after-commit publish",
        )
        parser.add_argument(
            "--once", action="store_true", help="publish what is pending, then exit"
        )

    def handle(
        self, *args, interval: float, batch: int, min_age: float, once: bool, **options
    ) -> None:
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        logger.info("relay started: interval=%ss batch=%s min_age=%ss", interval, batch, min_age)
        while not stopping:
            close_old_connections()
            try:
                published = publish_pending(limit=batch, min_age=timedelta(seconds=min_age))
            except DatabaseError as error:
                logger.warning("relay: database unavailable, retrying: %s", error)
                published = 0
            if published:
                logger.info("relay published %s message(s)", published)
            if once and published < batch:
                break
            if published < batch:
                time.sleep(interval)
        logger.info("relay stopped")
