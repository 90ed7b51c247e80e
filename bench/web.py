"""What the HTTP runs share (api, decoupling, throttle): a running web system, its load
clients and tokens, the drain that leaves the shared queues empty, CPU and result tables."""

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

from tqdm import tqdm

from chaos.broker import connect, consumers_on_work_queues, queue_depth
from chaos.http import wait_for_http
from messaging.topology import WORK_QUEUES

from .common import (
    LOG_DIR,
    ManagedProcess,
    celery_worker,
    gunicorn,
    python_argv,
    wait_ready,
)
from .http_load import LoadResult

BODY = {"product_name": "Bench widget", "quantity": 1, "unit_price": "25.00", "currency": "EUR"}
WARMUP_S = 1.0
WEB_WORKERS = 2
WORKER_CONCURRENCY = 1
DRAIN_CONCURRENCY = 2
# Seconds the drain waits with empty queues and no progress before it gives up.
DRAIN_STALL_S = 15
# A run fails (exit 1) above this share of errors; fewer are reported as figures.
MAX_ERROR_RATE = 0.01


@dataclass
class System:
    web: ManagedProcess
    base_url: str
    worker: ManagedProcess | None = None
    relay: ManagedProcess | None = None

    @property
    def processes(self) -> list[ManagedProcess]:
        return [process for process in (self.web, self.worker, self.relay) if process]


@contextlib.contextmanager
def running_system(name: str, env: dict[str, str], *, consumers: bool) -> Iterator[System]:
    """gunicorn on bench.settings and, with `consumers`, the relay and one worker (of both
    Orderflow and the plain implementation); all stopped on the way out."""
    web, base_url = gunicorn({**env, "DJANGO_SETTINGS_MODULE": "bench.settings"}, WEB_WORKERS)
    web.name, web.log_path = f"{name}-web", LOG_DIR / f"{name}-web.log"
    system = System(web=web, base_url=base_url)
    if consumers:
        # Orderflow's queues and the plain implementation's (bench/plain.py), one worker.
        system.worker = celery_worker(
            f"{name}-worker",
            "fraud,billing,plain_fraud,plain_billing",
            WORKER_CONCURRENCY,
            env,
            app="bench.plain_worker",
        )
        system.relay = ManagedProcess(
            f"{name}-relay",
            python_argv("manage.py", "relay_outbox"),
            {**env, "LOG_LEVEL": "INFO"},  # so that it writes "relay started"
            LOG_DIR,
        )
    try:
        for process in system.processes:
            process.start()
        wait_ready(web, "Booting worker")
        wait_for_http(base_url + "/api/orders/")
        if system.relay:
            wait_ready(system.relay, "relay started")
            wait_until_consumed(os.environ["CELERY_BROKER_URL"])
        yield system
    finally:
        for process in reversed(system.processes):
            process.stop()


def wait_until_consumed(broker_url: str, timeout: float = 90) -> None:
    """Until a worker consumes both work queues (at WARNING, celery logs no 'ready.')."""
    deadline = time.monotonic() + timeout
    while not {"fraud", "billing"} <= set(consumers_on_work_queues(broker_url)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no worker consumes fraud and billing after {timeout}s")
        time.sleep(0.2)


def queues_are_free(broker_url: str) -> bool:
    """Whether the shared work queues are idle: nobody consumes them and nothing waits there.

    Nothing is purged: messages waiting may be another run's, published before its worker
    starts.
    """
    busy = consumers_on_work_queues(broker_url)
    waiting = {name: queue_depth(broker_url, name) for name in WORK_QUEUES}
    if busy or any(waiting.values()):
        print(
            f"The shared queues are in use (consumers {busy}, messages waiting {waiting}); "
            "run again when the other run is done.",
            file=sys.stderr,
        )
        return False
    return True


def drain(name: str, env: dict[str, str], timeout: float = 300) -> dict[str, object]:
    """Settle every order the run created, with a fresh worker (no gateway latency) and relay.

    Leaves the shared queues as the run found them: empty, without purging what may be
    someone else's. Gives up when nothing is left to consume but orders stay unsettled
    (another process took their messages), and purges only after `timeout`.
    """
    from ordering.models import Order
    from ordering.state_machine import TERMINAL_STATUSES, OrderStatus

    settled = [*TERMINAL_STATUSES, OrderStatus.FAILED]
    unsettled = Order.objects.filter(events__cause="created").exclude(status__in=settled)
    drain_env = {**env, "BILLING_FAKE_LATENCY_MS": "0"}
    processes = [
        celery_worker(f"{name}-drain-worker", "fraud,billing", DRAIN_CONCURRENCY, drain_env),
        ManagedProcess(
            f"{name}-drain-relay", python_argv("manage.py", "relay_outbox"), drain_env, LOG_DIR
        ),
    ]
    broker_url = os.environ["CELERY_BROKER_URL"]
    total = left = unsettled.count()
    started = time.monotonic()
    purged = 0
    try:
        for process in processes:
            process.start()
        wait_until_consumed(broker_url)
        stalled_since = None
        with tqdm(total=total, desc="draining", unit="order", file=sys.stderr, leave=False) as bar:
            while left := unsettled.count():
                moved = total - left != bar.n
                bar.update(total - left - bar.n)
                waiting = sum(queue_depth(broker_url, name) for name in WORK_QUEUES)
                stalled_since = None if waiting or moved else stalled_since or time.monotonic()
                if stalled_since and time.monotonic() - stalled_since > DRAIN_STALL_S:
                    print(f"drain: {left} orders unsettled, their messages gone", file=sys.stderr)
                    break
                if time.monotonic() - started > timeout:
                    purged = purge_work_queues(broker_url)
                    print(f"drain: {left} unsettled after {timeout}s, purged", file=sys.stderr)
                    break
                time.sleep(0.2)
    finally:
        for process in reversed(processes):
            process.stop()
    return {
        "orders": total,
        "seconds": round(time.monotonic() - started, 1),
        "unsettled": left,
        "purged": purged,
    }


def purge_work_queues(broker_url: str) -> int:
    with connect(broker_url) as connection:
        return sum(connection.default_channel.queue_purge(name) or 0 for name in WORK_QUEUES)


def client_tokens(prefix: str, clients: int) -> list[str]:
    """One new buyer with a token per client (no password: nothing to hash)."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    users = get_user_model().objects
    return [
        Token.objects.create(user=users.create_user(f"{prefix}-client-{n}")).key
        for n in range(clients)
    ]


def wait_settled(timeout: float = 300, **filters) -> None:
    """Until every order matching `filters` is terminal (or FAILED)."""
    from ordering.models import Order
    from ordering.state_machine import TERMINAL_STATUSES, OrderStatus

    unsettled = Order.objects.filter(**filters).exclude(
        status__in=[*TERMINAL_STATUSES, OrderStatus.FAILED]
    )
    deadline = time.monotonic() + timeout
    while unsettled.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{unsettled.count()} orders unsettled after {timeout}s")
        time.sleep(0.2)


def order_outcomes(**filters) -> dict[str, int]:
    from django.db.models import Count

    from ordering.models import Order

    rows = Order.objects.filter(**filters).values("status").annotate(count=Count("id"))
    return {row["status"]: row["count"] for row in rows.order_by("status")}


def load_succeeded(*results: LoadResult) -> bool:
    failed = [result for result in results if not result.ok or result.error_rate > MAX_ERROR_RATE]
    for result in failed:
        print(f"too many errors: {dict(result.errors)} of {len(result.samples)}", file=sys.stderr)
    return not failed


def load_row(name: str, result: LoadResult) -> list[object]:
    latency = result.figures()["latency_ms"]
    return [
        name,
        len(result.samples),
        result.requests_per_s,
        round(latency["p50"], 1),
        round(latency["p95"], 1),
        round(latency["p99"], 1),
        sum(result.errors.values()),
    ]
