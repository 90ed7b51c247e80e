import logging
import random
import time
from collections import Counter

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from demo import scenario
from messaging.selectors import queue_depths
from messaging.topology import DEAD_LETTER_QUEUE, STEP_QUEUES
from ordering import selectors as order_selectors
from ordering.state_machine import TERMINAL_STATUSES, OrderStatus

# FAILED is not terminal (a replay resumes it), but it waits for an operator: the demo is done.
SETTLED = TERMINAL_STATUSES | {OrderStatus.FAILED}
START_THE_SYSTEM = "Start it first: scripts/run.sh, honcho start or docker compose up."


class Command(BaseCommand):
    help = (
        "Place a mix of orders that end in every outcome, and show their statuses live until "
        "all are done. Needs the running system (worker, relay, dead-letter consumer)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--orders", type=int, default=50, help="how many (default 50)")
        parser.add_argument("--username", default="demo", help="the demo buyer's username")
        parser.add_argument(
            "--timeout", type=float, default=120, help="seconds to wait for every order"
        )
        parser.add_argument(
            "--stall", type=float, default=15, help="seconds without progress before a warning"
        )
        parser.add_argument("--seed", type=int, help="repeat a previous demo's mix")

    def handle(self, *args, orders, username, timeout, stall, seed, **options) -> None:
        """Check that workers consume, place the orders, then watch them to the end."""
        if orders < 1:
            raise CommandError("--orders must be at least 1.")
        if options["verbosity"] < 2:
            # A line per order placed would bury the summary; the web and worker logs keep theirs.
            logging.getLogger("ordering").setLevel(logging.WARNING)
        queues = self._check_consumers()
        dead_letters = bool(queues and queues[DEAD_LETTER_QUEUE].consumers)
        available, missing = scenario.kinds(dead_letters=dead_letters)
        for reason in missing:
            self.stdout.write(self.style.WARNING(f"Not shown: {reason}."))
        planned = scenario.plan(orders=orders, available=available, seed=seed)
        rng = random.Random(seed)  # noqa: S311 - a demo's mix, not a secret
        buyers = scenario.demo_buyers(orders=orders, username=username)
        expected = {
            scenario.place(status=status, buyer=buyer, rng=rng): status
            for status, buyer in zip(planned, buyers, strict=True)
        }
        names = sorted({buyer.username for buyer in buyers})
        self.stdout.write(f"Placed {orders} orders as {', '.join(names)}:")
        for kind in available:
            count = sum(1 for status in planned if status == kind.status)
            if count:
                self.stdout.write(f"  {count:4} to end {kind.status}: {kind.why}")
        actual = self._watch(expected, timeout=timeout, stall=stall)
        self._summary(expected, actual)

    def _check_consumers(self) -> dict | None:
        """The work and dead-letter queues' depths by name; CommandError when no worker
        consumes. None when the broker cannot count consumers (kombu's filesystem broker)."""
        queues = {depth.name: depth for depth in queue_depths()}
        if not any(depth.available for depth in queues.values()):
            raise CommandError(f"The broker is unreachable. {START_THE_SYSTEM}")
        if any(depth.available and depth.consumers is None for depth in queues.values()):
            self.stdout.write(
                "This broker cannot tell whether a worker is running; if nothing moves, "
                "start one (honcho start)."
            )
            return None
        idle = [name for name in STEP_QUEUES if not queues[name].consumers]
        if idle:
            raise CommandError(
                f"No worker is consuming {' and '.join(idle)}: the orders would wait there. "
                + START_THE_SYSTEM
            )
        if not queues[DEAD_LETTER_QUEUE].consumers:
            self.stdout.write(
                self.style.WARNING(
                    "No dead-letter consumer (manage.py consume_dead_letters) is running."
                )
            )
        return queues

    def _watch(self, expected: dict, *, timeout: float, stall: float) -> dict:
        live = self.stdout.isatty()
        started = last_change = time.monotonic()
        shown = None
        while True:
            actual = order_selectors.statuses_of(order_ids=expected)
            now = time.monotonic()
            line = f"{now - started:5.1f}s  {_counts(actual.values())}"
            if _counts(actual.values()) != shown:
                shown, last_change = _counts(actual.values()), now
                self.stdout.write(f"\r\033[K{line}" if live else line, ending="" if live else "\n")
                self.stdout.flush()
            if all(status in SETTLED for status in actual.values()):
                if live:
                    self.stdout.write("")
                return actual
            if now - last_change > stall:
                warning = self.style.WARNING(_stalled(expected, actual, stall))
                self.stdout.write(("\n" if live else "") + warning)
                last_change = now
            if now - started > timeout:
                self._summary(expected, actual)
                raise CommandError(f"Not every order finished within {timeout:.0f}s.")
            time.sleep(0.25)

    def _summary(self, expected: dict, actual: dict) -> None:
        planned, got = Counter(expected.values()), Counter(actual.values())
        self.stdout.write(f"\n{'status':16} {'planned':>8} {'now':>6}")
        for status in OrderStatus:
            if planned[status] or got[status]:
                self.stdout.write(f"{status:16} {planned[status]:8} {got[status]:6}")
        surprises = sum(1 for order_id, status in expected.items() if actual[order_id] != status)
        if surprises:
            self.stdout.write(self.style.WARNING(f"{surprises} order(s) ended otherwise."))
        if got[OrderStatus.FAILED]:
            self.stdout.write(
                "FAILED orders wait for an operator: admin -> Messaging -> Dead letters -> "
                "replay them (their fault is spent now, so they go through to PROCESSED)."
            )


def _stalled(expected: dict, actual: dict, stall: float) -> str:
    waiting = {expected[order_id] for order_id, status in actual.items() if status not in SETTLED}
    if waiting == {OrderStatus.FAILED}:
        return (
            "Waiting for the orders set to fail: RabbitMQ redelivers each one "
            f"{settings.BROKER_DELIVERY_LIMIT + 1} times, a worker process dying each time, "
            "before it dead-letters it."
        )
    return f"Nothing has moved for {stall:.0f}s: is the worker running? {START_THE_SYSTEM}"


def _counts(statuses) -> str:
    counts = Counter(statuses)
    return "  ".join(f"{status} {counts[status]}" for status in OrderStatus if counts[status])
