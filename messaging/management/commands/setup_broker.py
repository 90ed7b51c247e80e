from amqp.exceptions import PreconditionFailed
from django.core.management.base import BaseCommand, CommandError

from config.celery import app
from core.errors import ApplicationError
from messaging.parking import declare_dead_letter_queues
from messaging.topology import declare_delayed_delivery, declare_topology


class Command(BaseCommand):
    help = (
        "Declare the RabbitMQ exchanges and queues (dead letters first), and Celery's delayed "
        "delivery ones, bound to the work queues. Safe to run again. "
        "Replaces a dead_letter queue an older release declared with other arguments, "
        "keeping its messages (stop the deadletters process first)."
    )

    def handle(self, *args, **options) -> None:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=3)
            try:
                if declare_dead_letter_queues(connection):
                    self.stdout.write("dead_letter queue replaced with this release's arguments")
            except ApplicationError as error:
                raise CommandError(error.message) from error
            try:
                # Declared here whatever BROKER_DECLARES_TOPOLOGY says: the release's user
                # is the one that may configure, and the others count on it.
                declare_topology(connection, passive=False)
                declare_delayed_delivery(connection)
            except PreconditionFailed as error:
                # An older release declared a work queue with other arguments (a delivery
                # limit of 5, say): fail the release, which leaves the old version running.
                raise CommandError(
                    f"{error.reply_text}. RabbitMQ cannot change a queue's arguments. Either "
                    "set BROKER_DELIVERY_LIMIT to the queue's current value, or stop the "
                    "workers, let fraud and billing drain, delete them and release again "
                    "(docs/reliability.md, x-delivery-limit)."
                ) from error
        self.stdout.write("broker topology declared")
