from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from messaging.retention import prune


class Command(BaseCommand):
    help = (
        "Delete the pipeline's bookkeeping older than --days: published outbox rows, records "
        "of applied messages, task results and dead letters already replayed or discarded. "
        "Run it daily (cron, Heroku Scheduler)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=float, default=7, help="keep this many days (7)")

    def handle(self, *args, days: float, **options) -> None:
        """Prune, then print how many rows of each kind went."""
        if days < 1:
            raise CommandError("--days must be at least 1: younger rows may still be in use")
        for kind, count in prune(older_than=timedelta(days=days)).items():
            self.stdout.write(f"{count} {kind} deleted")
