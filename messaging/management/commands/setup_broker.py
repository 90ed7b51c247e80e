from django.core.management.base import BaseCommand, CommandError

from config.celery import app
from core.errors import ApplicationError
from messaging.parking import declare_dead_letter_queues
from messaging.topology import declare_topology


class Command(BaseCommand):
    help = (
        "Declare the RabbitMQ exchanges and queues (dead letters first). Safe to run again. "
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
            declare_topology(connection)
        self.stdout.write("broker topology declared")
