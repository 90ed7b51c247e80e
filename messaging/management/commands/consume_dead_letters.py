import logging
import signal

from django.core.management.base import BaseCommand

from config.celery import app
from messaging.deadletter_consumer import DeadLetterConsumer

logger = logging.getLogger("messaging.deadletters")


class Command(BaseCommand):
    help = (
        "Record every dead-lettered message as a DeadLetter row for the admin (parking what "
        "cannot be recorded). Runs until stopped."
    )

    def handle(self, *args, **options) -> None:
        with app.connection_for_read() as connection:
            consumer = DeadLetterConsumer(connection)
            signal.signal(signal.SIGTERM, lambda *_: setattr(consumer, "should_stop", True))
            consumer.run()
        logger.info("dead-letter consumer stopped")
