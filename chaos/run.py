"""One chaos run: start the real system, post orders while faults fire, settle, check.

The system is the Procfile's: gunicorn, several celery workers, the relay and the dead-letter
consumer, on a fresh PostgreSQL database and the real RabbitMQ. Every process reaches the
database through a TCP proxy (so an outage can be made), and the broker directly (so a broker
restart is the real thing). Faults fire when the load reaches points drawn from a seeded
random schedule, so a failing run can be repeated with the same --seed.
"""

import logging
import os
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from django.db import DatabaseError, close_old_connections

from .broker import publish_raw, queue_depth
from .faults import BrokerControl, database_fault, kill_worker, kill_worker_child
from .http import ApiClient
from .processes import (
    ROOT,
    ManagedProcess,
    celery_worker_argv,
    gunicorn_argv,
    relay_and_dead_letter_consumer,
    start_and_wait_until_ready,
)
from .proxy import TcpProxy, free_port

logger = logging.getLogger("chaos")

# (unit price, expected outcome) of the orders posted, one of each in turn
ORDER_MIX = [
    ("25.00", "PROCESSED"),
    ("40.00", "PROCESSED"),
    ("7000.00", "PAYMENT_FAILED"),
    ("20000.00", "CANCELED_FRAUD"),
]
ORDERS_PER_BUYER = 15  # under FRAUD_MAX_ORDERS_PER_HOUR, so the hourly rule never fires


@dataclass
class Config:
    orders: int = 200
    clients: int = 4
    workers: int = 2
    worker_kills: int = 2
    broker_restarts: int = 1
    db_faults: int = 1
    duplicates: float = 0.1
    late: float = 0.05
    gateway_failure_rate: float = 0.05
    poison: int = 3
    seed: int = 1
    settle_timeout: float = 300
    rate: float = 0  # orders posted per second, all clients together; 0: as fast as they can
    broker_control: str = "auto"
    # A RabbitMQ cluster of this many nodes (0: the broker CELERY_BROKER_URL names), the
    # worker hosts (network namespaces) and the cluster's faults: chaos.cluster_run.
    cluster_nodes: int = 0
    hosts: int = 2
    leader_stops: int = 1
    node_stops: int = 1
    host_cuts: int = 1
    node_down_seconds: float = 10
    cut_seconds: float = 25
    cluster_port: int = 5681
    subnet: str = "10.77"
    host_prefix: str = "ofhost"
    database_url: str = ""
    broker_url: str = ""
    log_dir: Path = ROOT / "test-artifacts" / "chaos"


@dataclass
class Run:
    accepted: dict[uuid.UUID, str] = field(default_factory=dict)
    refused: int = 0
    faults: list[tuple[float, str]] = field(default_factory=list)
    duplicates_sent: int = 0
    late_sent: int = 0
    poison_sent: int = 0
    load_seconds: float = 0.0
    settle_seconds: float = 0.0
    started: float = field(default_factory=time.monotonic)

    def log_fault(self, what: str) -> None:
        at = time.monotonic() - self.started
        self.faults.append((at, what))
        logger.info("fault at %.1fs: %s", at, what)


def database_urls(base_url: str, seed: int) -> tuple[str, str, str]:
    """(admin URL, run URL, run database name) for a fresh database next to `base_url`.

    Named after the base database, so runs from different databases on one server (each
    developer's, each test database) never drop each other's: `orderflow` gives
    `orderflow_chaos_<seed>`, `test_orderflow_h1` gives `test_orderflow_h1_chaos_<seed>`.
    """
    parts = urlsplit(base_url)
    base_name = parts.path.lstrip("/") or "orderflow"
    name = f"{base_name}_chaos_{seed}"
    return (
        urlunsplit(parts._replace(path="/postgres")),
        urlunsplit(parts._replace(path=f"/{name}")),
        name,
    )


def create_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


class ChaosRun:
    def __init__(self, config: Config, *, admin_url: str, run_url: str, database: str) -> None:
        self.config = config
        # Two generators from one seed: the fault schedule stays the same whatever the message
        # thread draws (repeatable runs, not secrets).
        self.rng = random.Random(config.seed)  # noqa: S311
        self.message_rng = random.Random(config.seed + 1)  # noqa: S311
        self.admin_url = admin_url
        self.run_url = run_url
        self.database = database
        self.run = Run()
        self.posted = 0
        self.posted_lock = threading.Lock()
        self.load_done = threading.Event()

    # --- the system ---------------------------------------------------------------------

    def start_system(self) -> None:
        db = urlsplit(self.run_url)
        self.db_proxy = TcpProxy((db.hostname or "127.0.0.1", db.port or 5432)).start()
        proxied_db = urlunsplit(
            db._replace(netloc=f"{db.netloc.rsplit('@', 1)[0]}@127.0.0.1:{self.db_proxy.port}")
        )
        broker = urlsplit(self.config.broker_url)
        self.broker_proxy = TcpProxy((broker.hostname or "127.0.0.1", broker.port or 5672)).start()
        mode = self.config.broker_control
        if mode == "auto":
            # rabbitmqctl drives the machine's default node: use it only for that broker.
            default_node = (
                broker.hostname in ("127.0.0.1", "localhost") and (broker.port or 5672) == 5672
            )
            mode = "rabbitmqctl" if default_node and BrokerControl.rabbitmqctl_works() else "proxy"
        self.broker_control = BrokerControl(mode, self.broker_proxy)
        broker_url = self.config.broker_url
        if mode == "proxy":
            broker_url = urlunsplit(
                broker._replace(
                    netloc=f"{broker.netloc.rsplit('@', 1)[0]}@127.0.0.1:{self.broker_proxy.port}"
                )
            )
        env = {
            **os.environ,
            "DATABASE_URL": proxied_db,
            "CELERY_BROKER_URL": broker_url,
            "DEBUG": "0",
            "SECRET_KEY": "orderflow-chaos-not-a-secret",
            "ALLOWED_HOSTS": "127.0.0.1",
            "LOG_LEVEL": "INFO",
            "BILLING_FAKE_FAILURE_RATE": str(self.config.gateway_failure_rate),
            "RETRY_BASE_SECONDS": "1",
            "RETRY_MAX_SECONDS": "8",
            "BROKER_CONNECTION_TIMEOUT": "1",
            "SECURE_SSL_REDIRECT": "0",  # plain HTTP on localhost
        }
        self.env = env
        port = free_port()
        log_dir = self.config.log_dir
        self.web = ManagedProcess(
            "web", gunicorn_argv(port=port, extra=("--timeout", "60")), env, log_dir
        )
        self.workers = [
            ManagedProcess(f"worker{n}", celery_worker_argv(hostname=f"chaos{n}@%h"), env, log_dir)
            for n in range(self.config.workers)
        ]
        self.relay, self.deadletters = relay_and_dead_letter_consumer(env, log_dir)
        self.processes = [self.web, *self.workers, self.relay, self.deadletters]
        start_and_wait_until_ready(
            web=self.web,
            workers=self.workers,
            others=[self.relay, self.deadletters],
            worker_timeout=90,
        )
        self.base_url = f"http://127.0.0.1:{port}"
        logger.info("system up: %s, broker control %s", self.base_url, mode)

    def stop_system(self) -> None:
        for process in getattr(self, "processes", []):
            process.stop()
        for proxy in (getattr(self, "db_proxy", None), getattr(self, "broker_proxy", None)):
            if proxy is not None:
                proxy.cut()

    # --- load ---------------------------------------------------------------------------

    def make_clients(self) -> list[ApiClient]:
        from django.contrib.auth import get_user_model
        from rest_framework.authtoken.models import Token

        buyers = -(-self.config.orders // ORDERS_PER_BUYER)
        users = get_user_model()
        return [
            ApiClient(
                self.base_url, Token.objects.create(user=users.objects.create_user(f"chaos{n}")).key
            )
            for n in range(buyers)
        ]

    def post_orders(self, clients: list[ApiClient]) -> None:
        numbers = iter(range(self.config.orders))
        lock = threading.Lock()

        def client_loop() -> None:
            while True:
                with lock:
                    n = next(numbers, None)
                if n is None:
                    return
                if self.config.rate:  # paced, so the faults fall while orders still flow
                    time.sleep(max(0.0, started + n / self.config.rate - time.monotonic()))
                self.post_one(n, clients[n % len(clients)])
                with self.posted_lock:
                    self.posted += 1

        started = time.monotonic()
        threads = [threading.Thread(target=client_loop) for _ in range(self.config.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.run.load_seconds = time.monotonic() - started
        self.load_done.set()

    def post_one(self, n: int, client: ApiClient) -> None:
        """Post order n, retrying with its Idempotency-Key through outages (as a client should)."""
        price, expected = ORDER_MIX[n % len(ORDER_MIX)]
        body = {"product_name": f"Chaos item {n}", "quantity": 1, "unit_price": price}
        headers = {"Idempotency-Key": f"chaos-{self.config.seed}-{n}"}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                response = client.post("/api/orders/", body, headers)
            except OSError:
                time.sleep(0.5)
                continue
            if response.status in (200, 201):
                self.run.accepted[uuid.UUID(response.body["id"])] = expected
                return
            if response.status < 500:
                break
            time.sleep(0.5)
        self.run.refused += 1
        logger.warning("order %s was never accepted", n)

    # --- faults -------------------------------------------------------------------------

    def schedule(self) -> list[tuple[int, str]]:
        """(orders posted, fault) pairs, drawn once from the seed."""
        events = (
            ["worker_kill"] * self.config.worker_kills
            + ["broker_restart"] * self.config.broker_restarts
            + ["db_fault"] * self.config.db_faults
            + ["poison"] * self.config.poison
        )
        return sorted(
            (self.rng.randint(self.config.orders // 10, self.config.orders * 8 // 10), event)
            for event in events
        )

    def inject_faults(self) -> None:
        for threshold, event in self.schedule():
            while self.posted < threshold and not self.load_done.is_set():
                time.sleep(0.05)
            try:
                self.fire(event)
            except Exception as error:  # a fault that could not be made is reported, not fatal
                self.run.log_fault(f"{event} failed: {error!r}")

    def fire(self, event: str) -> None:
        if event == "worker_kill":
            worker = self.rng.choice(self.workers)
            if self.rng.random() < 0.5:
                self.run.log_fault(kill_worker_child(worker, self.rng))
            else:
                self.run.log_fault(kill_worker(worker))
        elif event == "broker_restart":
            self.run.log_fault(self.broker_control.restart(down_seconds=3))
        elif event == "db_fault":
            self.run.log_fault(
                database_fault(
                    admin_url=self.admin_url,
                    database=self.database,
                    proxy=self.db_proxy,
                    down_seconds=3,
                )
            )
        elif event == "poison":
            self.send_poison()

    def send_poison(self) -> None:
        kind = self.rng.choice(["undecodable", "unknown_task", "bad_order_id"])
        if kind == "undecodable":
            body = f"not json {uuid.uuid4()}".encode()
            publish_raw(
                self.config.broker_url, queue="fraud", body=body, content_type="application/json"
            )
        else:
            from config.celery import app

            name = "fraud.no_such_step" if kind == "unknown_task" else "billing.charge_order"
            app.send_task(name, kwargs={"order_id": "not-a-uuid"}, task_id=str(uuid.uuid4()))
        self.run.poison_sent += 1
        self.run.log_fault(f"poison message: {kind}")

    def duplicate_messages(self) -> None:
        """Re-publish published outbox messages: some at once (duplicates), some late."""
        from messaging.broker import send_message
        from messaging.models import OutboxMessage

        seen: set[uuid.UUID] = set()
        late: list[tuple[float, OutboxMessage]] = []
        while not (self.load_done.is_set() and not late):
            try:
                close_old_connections()
                fresh = list(
                    OutboxMessage.objects.filter(published_at__isnull=False).exclude(id__in=seen)[
                        :200
                    ]
                )
            except DatabaseError:
                time.sleep(0.5)
                continue
            for message in fresh:
                seen.add(message.id)
                draw = self.message_rng.random()
                if draw < self.config.duplicates:
                    self._resend(send_message, message, "duplicates_sent")
                elif draw < self.config.duplicates + self.config.late:
                    late.append((time.monotonic() + self.message_rng.uniform(5, 15), message))
            due = [entry for entry in late if entry[0] <= time.monotonic()]
            for entry in due:
                late.remove(entry)
                self._resend(send_message, entry[1], "late_sent")
            time.sleep(0.2)

    def _resend(self, send_message, message, counter: str) -> None:
        try:
            send_message(
                task_name=message.task_name,
                message_id=message.id,
                kwargs=message.kwargs,
                headers=message.headers,
            )
        except Exception as error:  # the broker may be restarting; a lost duplicate is fine
            logger.info("duplicate not sent: %s", error)
            return
        setattr(self.run, counter, getattr(self.run, counter) + 1)

    # --- settling -----------------------------------------------------------------------

    def settle(self) -> dict[str, int]:
        """Wait until every accepted order is finished and nothing is in flight."""
        from messaging.models import OutboxMessage
        from ordering.models import Order
        from ordering.state_machine import TERMINAL_STATUSES

        for worker in self.workers:
            if not worker.running:
                worker.start()
        started = time.monotonic()
        quiet = 0
        depths: dict[str, int] = {}
        while quiet < 3:
            try:
                close_old_connections()
                unfinished = Order.objects.exclude(
                    status__in=[*TERMINAL_STATUSES, "FAILED"]
                ).count()
                unpublished = OutboxMessage.objects.filter(published_at__isnull=True).count()
                depths = {
                    q: queue_depth(self.config.broker_url, q)
                    for q in ("fraud", "billing", "dead_letter")
                }
            except Exception as error:  # still recovering from a fault
                logger.info("settling: %s", error)
                quiet = 0
                time.sleep(1)
                continue
            busy = unfinished or unpublished or any(depths.values())
            quiet = 0 if busy else quiet + 1
            if time.monotonic() - started > self.config.settle_timeout:
                logger.error(
                    "did not settle: %s unfinished, %s unpublished, %s",
                    unfinished,
                    unpublished,
                    depths,
                )
                break
            time.sleep(1)
        self.run.settle_seconds = time.monotonic() - started
        return depths


def summarize(run: Run, config: Config) -> dict:
    return {
        "config": {
            k: (str(v) if isinstance(v, (Path, Decimal)) else v)
            for k, v in vars(config).items()
            if k not in ("database_url", "broker_url")
        },
        "orders_accepted": len(run.accepted),
        "orders_refused": run.refused,
        "duplicates_sent": run.duplicates_sent,
        "late_sent": run.late_sent,
        "poison_sent": run.poison_sent,
        "load_seconds": round(run.load_seconds, 1),
        "settle_seconds": round(run.settle_seconds, 1),
        "faults": [{"at_s": round(at, 1), "what": what} for at, what in run.faults],
    }
