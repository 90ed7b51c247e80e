import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from config.celery import app
from core.errors import ApplicationError
from messaging import deadletters, parking
from messaging.models import DeadLetter
from messaging.topology import DEAD_LETTER_QUEUE, PARKING_QUEUE


class Command(BaseCommand):
    help = (
        "List, show, replay or discard dead letters. list shows NEW ones (--all: every status); "
        "replay and discard act on NEW ones chosen by --queue, --task or --all, or on --id; "
        f"unpark moves what waits in {PARKING_QUEUE} back to {DEAD_LETTER_QUEUE} to be recorded."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["list", "show", "replay", "discard", "unpark"])
        parser.add_argument(
            "--id", type=int, action="append", dest="ids", help="a dead letter id (repeatable)"
        )
        parser.add_argument("--queue", help="only those that died in this queue")
        parser.add_argument("--task", help="only those of this task name")
        parser.add_argument("--all", action="store_true", help="every status, not only NEW")
        parser.add_argument("--limit", type=int, help="unpark: at most this many")

    def handle(self, *args, action: str, ids, queue, task, all: bool, limit, **options) -> None:
        if action == "unpark":
            return self._unpark(limit)
        selected = DeadLetter.objects.order_by("last_death_at")
        acting = action in ("replay", "discard")
        if ids:
            selected = selected.filter(pk__in=ids)
            unknown = sorted(set(ids) - set(selected.values_list("pk", flat=True)))
            if unknown:
                raise CommandError(f"No dead letter with id {', '.join(map(str, unknown))}.")
        elif acting or not all:
            # --all lists every status, but replays or discards only NEW ones.
            selected = selected.filter(status=DeadLetter.Status.NEW)
        if queue:
            selected = selected.filter(queue=queue)
        if task:
            selected = selected.filter(task_name=task)
        if acting and not (ids or queue or task or all):
            raise CommandError(f"Say which to {action}: --id, --queue, --task or --all.")
        {"list": self._list, "show": self._show}.get(action, self._act)(selected, action)

    def _list(self, selected, action) -> None:
        self.stdout.write(
            f"{'id':>6}  {'status':9}  {'reason':14}  {'count':>5}  {'queue':8}  task / order"
        )
        for d in selected:
            self.stdout.write(
                f"{d.pk:>6}  {d.status:9}  {d.reason:14}  {d.death_count:>5}  {d.queue:8}  "
                f"{d.task_name or '?'} {d.subject_id or ''}"
            )

    def _show(self, selected, action) -> None:
        for d in selected:
            self.stdout.write(f"dead letter {d.pk}: {d}")
            for name in (
                "message_id",
                "queue",
                "exchange",
                "routing_key",
                "task_name",
                "subject_id",
                "reason",
                "death_count",
                "first_death_at",
                "last_death_at",
                "status",
                "replay_count",
                "acted_by",
                "acted_at",
                "content_type",
            ):
                self.stdout.write(f"  {name}: {getattr(d, name)}")
            self.stdout.write(f"  last error: {deadletters.last_error_of(d) or 'unknown'}")
            self.stdout.write(f"  headers: {d.headers}")
            self.stdout.write(f"  body: {bytes(d.body)[:2000]!r}")

    def _act(self, selected, action) -> None:
        act = deadletters.replay if action == "replay" else deadletters.discard
        failed = 0
        for pk in tqdm(
            list(selected.values_list("pk", flat=True)), desc=action, unit="msg", file=sys.stderr
        ):
            try:
                act(dead_letter_id=pk, actor=None)
            except ApplicationError as error:
                failed += 1
                self.stderr.write(f"#{pk}: {error.message}")
        if failed:
            raise CommandError(f"{failed} dead letter(s) could not be {action}ed.")
        self.stdout.write(f"done: {action}")

    def _unpark(self, limit: int | None) -> None:
        """Parked dead letters go back to dead_letter, where the consumer records them."""
        try:
            with app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=3)
                moved = parking.unpark(connection, limit=limit)
        except parking.MOVE_ERRORS as error:
            raise CommandError(f"Could not unpark: {error!r}") from error
        self.stdout.write(f"moved {moved} parked dead letter(s) back to {DEAD_LETTER_QUEUE}")
