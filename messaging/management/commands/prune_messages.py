from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from messaging.retention import prune


class Command(BaseCommand):
    help = (
        "Delete the pipeline's bookkeeping older than --days: published outbox rows, records "
        "of applied messages, task results and dead letters already replayed or discarded. "
        "Celery beat runs it daily (the maintenance.prune_messages task); this is the same by hand."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--days",
            type=float,
            default=settings.MESSAGE_RETENTION_DAYS,
            help="keep this many days (MESSAGE_RETENTION_DAYS, 7)",
        )

    def handle(self, *args, days: float, **options) -> None:
        """Prune, then print how many rows of each kind went."""
        try:
            deleted = prune(older_than=timedelta(days=days))
        except ValueError as error:
            raise CommandError(f"--days: {error}") from None
        for kind, count in deleted.items():
            self.stdout.write(f"{count} {kind} deleted")
