from django.core.management.base import BaseCommand

from config.celery import app
from messaging.topology import declare_topology


class Command(BaseCommand):
    help = "Declare the RabbitMQ exchanges and queues (dead letters first). Safe to run again."

    def handle(self, *args, **options) -> None:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=3)
            declare_topology(connection)
        self.stdout.write("broker topology declared")
