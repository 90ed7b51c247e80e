import signal

from django.conf import settings
from django.core.management.base import BaseCommand

from config import tracing
from core.metrics import serve
from messaging import relay
from messaging.topology import LANES


class Command(BaseCommand):
    help = (
        "Publish the outbox: woken by each commit that writes messages (PostgreSQL NOTIFY), "
        "polling every --interval seconds besides, until stopped."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--lane",
            dest="lanes",
            action="append",
            choices=LANES,
            help="publish this lane's messages only (repeatable; default: every lane). "
            "The Procfile runs a relay for `main` and one for `webhooks`",
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=1.0,
            help="seconds between polls when no commit wakes the relay",
        )
        parser.add_argument("--batch", type=int, default=100, help="rows per transaction")
        parser.add_argument(
            "--min-age",
            type=float,
            # With the after-commit publish on, fresh rows are left to it.
            default=1.0 if settings.OUTBOX_PUBLISH_ON_COMMIT else 0.0,
            help="seconds a row must have waited before the relay takes it "
            "(default: 1 with OUTBOX_PUBLISH_ON_COMMIT, else 0)",
        )
        parser.add_argument(
            "--gather",
            type=float,
            default=settings.OUTBOX_RELAY_GATHER_SECONDS,
            help="least seconds between passes while commits keep coming "
            "(default: OUTBOX_RELAY_GATHER_SECONDS)",
        )
        parser.add_argument(
            "--once", action="store_true", help="publish what is pending, then exit"
        )

    def handle(
        self,
        *args,
        lanes: list[str] | None,
        interval: float,
        batch: int,
        min_age: float,
        gather: float,
        once: bool,
        **options,
    ) -> None:
        tracing.init(process="relay")  # off unless OTEL_TRACES_EXPORTER is set
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        if settings.RELAY_METRICS_PORT:
            serve(port=settings.RELAY_METRICS_PORT, process="relay")
        relay.run(
            lanes=lanes,
            interval=interval,
            batch=batch,
            min_age=min_age,
            gather=gather,
            once=once,
            stopping=lambda: bool(stopping),
        )
