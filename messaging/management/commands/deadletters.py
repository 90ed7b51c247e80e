import sys
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from tqdm import tqdm

from config.celery import app
from core.errors import ApplicationError
from messaging import deadletters, parking, selectors
from messaging.models import DeadLetter
from messaging.topology import DEAD_LETTER_QUEUE, PARKING_QUEUE


def moment(text: str) -> datetime:
    """An ISO 8601 date or time on the command line; without a zone, the project's."""
    value = parse_datetime(text)
    if value is None and (day := parse_date(text)) is not None:
        value = datetime(day.year, day.month, day.day)
    if value is None:
        raise ValueError(text)
    return timezone.make_aware(value) if timezone.is_naive(value) else value


moment.__name__ = "date or time"  # argparse names the type in its error


class Command(BaseCommand):
    help = (
        "List, show, replay or discard dead letters. list shows NEW ones (--all: every status); "
        "replay and discard act on NEW ones chosen by --queue, --task, --reason, --since, "
        "--until or --all, or on --id; --dry-run counts and lists them without acting; "
        f"unpark moves what waits in {PARKING_QUEUE} back to {DEAD_LETTER_QUEUE} to be recorded."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["list", "show", "replay", "discard", "unpark"])
        parser.add_argument(
            "--id", type=int, action="append", dest="ids", help="a dead letter id (repeatable)"
        )
        parser.add_argument("--queue", help="only those that died in this queue")
        parser.add_argument("--task", help="only those of this task name")
        parser.add_argument("--reason", help="only those whose reason contains this text")
        parser.add_argument(
            "--since", type=moment, help="only those last dead at or after this (ISO 8601)"
        )
        parser.add_argument(
            "--until", type=moment, help="only those last dead at or before this (ISO 8601)"
        )
        parser.add_argument("--all", action="store_true", help="every status, not only NEW")
        parser.add_argument(
            "--dry-run", action="store_true", help="replay, discard: count and list, do nothing"
        )
        parser.add_argument("--limit", type=int, help="unpark: at most this many")

    def handle(self, *args, action: str, ids, all: bool, dry_run: bool, limit, **options) -> None:
        if action == "unpark":
            return self._unpark(limit)
        filters = {name: options[name] for name in ("queue", "task", "reason", "since", "until")}
        acting = action in ("replay", "discard")
        if acting and not (ids or all or any(filters.values())):
            raise CommandError(
                f"Say which to {action}: --id, --queue, --task, --reason, --since, --until "
                "or --all."
            )
        # One selector for every filter, the admin's bulk replay's too. --all lists every
        # status, but replays or discards only NEW ones; an --id names one whatever its status.
        every_status = ids or (all and not acting)
        selected = selectors.dead_letters_matching(
            **{name: value for name, value in filters.items() if value},
            statuses=None if every_status else (DeadLetter.Status.NEW,),
        )
        if ids:
            selected = selected.filter(pk__in=ids)
            unknown = sorted(
                set(ids) - set(DeadLetter.objects.filter(pk__in=ids).values_list("pk", flat=True))
            )
            if unknown:
                raise CommandError(f"No dead letter with id {', '.join(map(str, unknown))}.")
        if acting and dry_run:
            return self._dry_run(selected, action)
        {"list": self._list, "show": self._show}.get(action, self._act)(selected, action)

    def _dry_run(self, selected, action) -> None:
        pks = list(selected.values_list("pk", flat=True))
        self.stdout.write(f"{len(pks)} dead letter(s) match; --dry-run: none {action}ed.")
        if pks:
            self.stdout.write(f"ids: {' '.join(map(str, pks))}")

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
        done, failed = 0, 0
        for pk in tqdm(
            list(selected.values_list("pk", flat=True)), desc=action, unit="msg", file=sys.stderr
        ):
            try:
                act(dead_letter_id=pk, actor=None)
            except ApplicationError as error:
                failed += 1
                self.stderr.write(f"#{pk}: {error.message}")
            else:
                done += 1
        self.stdout.write(f"{action}ed {done} dead letter(s)")
        if failed:  # each refused one is named above, with why
            raise CommandError(f"{failed} dead letter(s) could not be {action}ed.")

    def _unpark(self, limit: int | None) -> None:
        """Parked dead letters go back to dead_letter, where the consumer records them."""
        try:
            with app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=3)
                moved = parking.unpark(connection, limit=limit)
        except parking.MOVE_ERRORS as error:
            raise CommandError(f"Could not unpark: {error!r}") from error
        self.stdout.write(f"moved {moved} parked dead letter(s) back to {DEAD_LETTER_QUEUE}")
