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
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from celery.utils.nodenames import host_format
from django.db import DatabaseError, close_old_connections

from messaging.topology import DEAD_LETTER_QUEUE, PARKING_QUEUE, WORK_QUEUES

from .broker import publish_raw, queue_depth
from .cluster import RabbitCluster
from .faults import (
    BrokerControl,
    database_fault,
    kill_worker,
    kill_worker_child,
    reject_copy,
    take_and_reject,
)
from .http import AdminSession, ApiClient
from .pidbox import restart_worker_same_name, workers_answering
from .processes import (
    ROOT,
    ManagedProcess,
    celery_worker_argv,
    gunicorn_argv,
    python_argv,
    relay_and_dead_letter_consumer,
    start_and_wait_until_ready,
)
from .proxy import TcpProxy, free_port
from .receiver import DOWN, ERROR, OK, SLOW, Receiver

logger = logging.getLogger("chaos")

# (unit price, expected outcome) of the orders posted, one of each in turn
ORDER_MIX = [
    ("25.00", "PROCESSED"),
    ("40.00", "PROCESSED"),
    ("7000.00", "PAYMENT_FAILED"),
    ("20000.00", "CANCELED_FRAUD"),
]
ORDERS_PER_BUYER = 15  # under FRAUD_MAX_ORDERS_PER_HOUR, so the hourly rule never fires
MEASURED_QUEUES = (*WORK_QUEUES, DEAD_LETTER_QUEUE, PARKING_QUEUE)
CONNECTION_LOST = "Connection to broker lost"  # what a Celery worker logs when it happens
# Webhook retries that play out within a run: backing off from 1 s to at most 4 s (with
# jitter), attempts to spare past any receiver fault, the endpoint never disabled meanwhile.
WEBHOOK_TIMEOUT_SECONDS = 1
WEBHOOK_ENV = {
    "WEBHOOK_ALLOW_LOOPBACK": "1",  # the run's receiver listens on loopback
    "WEBHOOK_TIMEOUT_SECONDS": str(WEBHOOK_TIMEOUT_SECONDS),
    "WEBHOOK_DEADLINE_SECONDS": "3",
    "WEBHOOK_RETRY_BASE_SECONDS": "1",
    "WEBHOOK_RETRY_MAX_SECONDS": "4",
    "WEBHOOK_MAX_ATTEMPTS": "30",
    "WEBHOOK_DISABLE_AFTER_FAILURES": "1000000",
}
# Receiver fault kinds, made in turn: what the receiver does while one lasts.
RECEIVER_FAULTS = {"receiver_down": DOWN, "receiver_slow": SLOW, "receiver_error": ERROR}


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
    # "node": a RabbitMQ node of the run's own (chaos.node), restarted and alarmed for real;
    # "url": the broker of CELERY_BROKER_URL, in a vhost made for the run, cut at proxies.
    broker: str = "node"
    # Faults around alarms and dead letters (docs/reliability.md, the harness's fault table).
    alarms: int = 0
    alarm_seconds: float = 8
    stale_dead_letters: int = 0
    dead_letter_faults: int = 0
    dead_letter_down_seconds: float = 15
    channel_close_loops: int = 0
    channel_closes: int = 5
    replays_during_outage: int = 0
    same_name_restarts: int = 0
    relay_faults: int = 0
    relay_down_seconds: float = 6
    # With receiver faults, a webhooks worker and a receiver of the run's own, to which every
    # buyer subscribes; without, neither is started.
    receiver_faults: int = 0
    receiver_fault_seconds: float = 5
    # A RabbitMQ cluster of this many nodes (0: the broker CELERY_BROKER_URL names), the
    # worker hosts (network namespaces) and the cluster's faults: chaos.cluster_run.
    cluster_nodes: int = 0
    hosts: int = 2
    leader_stops: int = 1
    node_stops: int = 1
    host_cuts: int = 1
    majority_losses: int = 0
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
    started_wall: float = field(default_factory=time.time)  # to place database timestamps
    accepted_at: dict[uuid.UUID, float] = field(default_factory=dict)  # seconds into the run
    windows: list[tuple[str, float, float]] = field(default_factory=list)  # fault, start, end
    fired: Counter = field(default_factory=Counter)
    # The message ids of the dead letters each fault kind made.
    made: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def now(self) -> float:
        return time.monotonic() - self.started

    def log_fault(self, what: str) -> None:
        at = self.now()
        self.faults.append((at, what))
        logger.info("fault at %.1fs: %s", at, what)

    def dead_letters_made(self, kind: str, message_ids) -> None:
        self.made[kind] |= {str(message_id) for message_id in message_ids}

    def made_dead_letter(self, message_id) -> bool:
        return any(str(message_id) in ids for ids in self.made.values())


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
    def __init__(
        self,
        config: Config,
        *,
        admin_url: str,
        run_url: str,
        database: str,
        nodes: RabbitCluster | None = None,
    ) -> None:
        self.config = config
        self.nodes = nodes  # the run's own broker nodes; None: a broker it may only cut
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
        self.receiver: Receiver | None = None  # the webhook receiver, with receiver faults
        self.webhooks_worker: ManagedProcess | None = None  # and the worker that sends to it

    # --- the system ---------------------------------------------------------------------

    def start_system(self) -> None:
        """The Procfile's processes, each reaching PostgreSQL and RabbitMQ through proxies the
        faults cut: the dead-letter consumer through proxies of its own, the workers through
        theirs, so each can be cut off alone."""
        db = urlsplit(self.run_url)
        self.db_proxy = TcpProxy((db.hostname or "127.0.0.1", db.port or 5432)).start()
        self.dead_letter_db_proxy = TcpProxy((db.hostname or "127.0.0.1", db.port or 5432)).start()
        self.db_proxies = [self.db_proxy, self.dead_letter_db_proxy]
        broker = urlsplit(self.config.broker_url)
        upstream = (broker.hostname or "127.0.0.1", broker.port or 5672)
        self.broker_proxy = TcpProxy(upstream).start()  # web and relay
        # One per worker, so one worker's connection can be held half-open alone.
        self.worker_broker_proxies = [
            TcpProxy(upstream).start() for _ in range(self.config.workers)
        ]
        self.dead_letter_broker_proxy = TcpProxy(upstream).start()
        self.broker_proxies = [
            self.broker_proxy,
            *self.worker_broker_proxies,
            self.dead_letter_broker_proxy,
        ]
        self.broker_control = BrokerControl(self.broker_proxies, self.nodes)
        env = {
            **os.environ,
            "DATABASE_URL": _via(self.run_url, self.db_proxy),
            "CELERY_BROKER_URL": _via(self.config.broker_url, self.broker_proxy),
            "DEBUG": "0",
            "SECRET_KEY": "orderflow-chaos-not-a-secret",
            "ALLOWED_HOSTS": "127.0.0.1",
            "LOG_LEVEL": "INFO",
            "BILLING_FAKE_FAILURE_RATE": str(self.config.gateway_failure_rate),
            "RETRY_BASE_SECONDS": "1",
            "RETRY_MAX_SECONDS": "8",
            "BROKER_CONNECTION_TIMEOUT": "1",
            # A dead letter that cannot be recorded is parked after ~7 s, not ~30 s.
            "DEAD_LETTER_RECORD_ATTEMPTS": "3",
            "DEAD_LETTER_RETRY_BASE_SECONDS": "1",
            "DEAD_LETTER_RETRY_MAX_SECONDS": "4",
            "SECURE_SSL_REDIRECT": "0",  # plain HTTP on localhost
            "SESSION_COOKIE_SECURE": "0",  # so the operator's admin session works over it
            "CSRF_COOKIE_SECURE": "0",
            **WEBHOOK_ENV,
        }
        self.env = env
        worker_envs = [
            {
                **env,
                "CELERY_BROKER_URL": _via(self.config.broker_url, proxy),
                # The broker gives a half-open worker connection up after two or three of
                # these (a same-name restart waits for that), not after minutes.
                "BROKER_HEARTBEAT": "10",
            }
            for proxy in self.worker_broker_proxies
        ]
        dead_letter_env = {
            **env,
            "DATABASE_URL": _via(self.run_url, self.dead_letter_db_proxy),
            "CELERY_BROKER_URL": _via(self.config.broker_url, self.dead_letter_broker_proxy),
        }
        port = free_port()
        log_dir = self.config.log_dir
        self.web = ManagedProcess(
            "web", gunicorn_argv(port=port, extra=("--timeout", "60")), env, log_dir
        )
        hostnames = [f"chaos{n}@%h" for n in range(self.config.workers)]
        self.workers = [
            ManagedProcess(f"worker{n}", celery_worker_argv(hostname=hostname), worker_env, log_dir)
            for n, (hostname, worker_env) in enumerate(zip(hostnames, worker_envs, strict=True))
        ]
        self.worker_names = [host_format(hostname) for hostname in hostnames]  # as Celery does
        self.relay, _ = relay_and_dead_letter_consumer(env, log_dir)
        _, self.deadletters = relay_and_dead_letter_consumer(dead_letter_env, log_dir)
        self.processes = [self.web, *self.workers, self.relay, self.deadletters]
        webhook_workers = []
        if self.config.receiver_faults:  # the Procfile's webhooks worker, and a receiver
            hostname = "chaoswebhooks@%h"
            argv = celery_worker_argv(hostname=hostname, queues="webhooks", concurrency=4)
            self.webhooks_worker = ManagedProcess("webhooks", argv, env, log_dir)
            webhook_workers = [self.webhooks_worker]
            self.processes += webhook_workers
            self.worker_names.append(host_format(hostname))
            self.receiver = Receiver(delay=3 * WEBHOOK_TIMEOUT_SECONDS).start()
        start_and_wait_until_ready(
            web=self.web,
            workers=[*self.workers, *webhook_workers],
            others=[self.relay, self.deadletters],
            worker_timeout=90,
        )
        self.base_url = f"http://127.0.0.1:{port}"
        logger.info("system up: %s, broker faults by %s", self.base_url, self.broker_control.mode)

    def stop_system(self) -> None:
        for process in getattr(self, "processes", []):
            process.stop()
        if self.receiver is not None:
            self.receiver.stop()
        for proxy in getattr(self, "db_proxies", []) + getattr(self, "broker_proxies", []):
            proxy.cut()

    # --- load ---------------------------------------------------------------------------

    def make_clients(self) -> list[ApiClient]:
        from django.contrib.auth import get_user_model
        from rest_framework.authtoken.models import Token

        buyers = -(-self.config.orders // ORDERS_PER_BUYER)
        users = get_user_model()
        clients = [
            ApiClient(
                self.base_url, Token.objects.create(user=users.objects.create_user(f"chaos{n}")).key
            )
            for n in range(buyers)
        ]
        if self.receiver is not None:
            for client in clients:
                self.subscribe(client)
        return clients

    def subscribe(self, client: ApiClient) -> None:
        """The buyer registers the run's receiver for every event type, through the API."""
        from webhooks.events import EVENT_TYPES

        answer = client.post(
            "/api/webhooks/endpoints/", {"url": self.receiver.url, "event_types": list(EVENT_TYPES)}
        )
        if answer.status != 201:
            raise RuntimeError(f"webhook endpoint not registered: {answer.status} {answer.body}")

    def webhook_requests(self) -> list | None:
        """What the receiver was sent, when the run has one."""
        return None if self.receiver is None else list(self.receiver.received)

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
                order_id = uuid.UUID(response.body["id"])
                self.run.accepted[order_id] = expected
                self.run.accepted_at.setdefault(order_id, self.run.now())
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
            + ["alarm"] * self.config.alarms
            + ["stale_dead_letter"] * self.config.stale_dead_letters
            + ["dead_letter_fault"] * self.config.dead_letter_faults
            + ["channel_close_loop"] * self.config.channel_close_loops
            + ["replay_during_outage"] * self.config.replays_during_outage
            + ["same_name_restart"] * self.config.same_name_restarts
            + ["relay_fault"] * self.config.relay_faults
            + ["receiver_fault"] * self.config.receiver_faults
        )
        return sorted(
            (self.rng.randint(self.config.orders // 10, self.config.orders * 8 // 10), event)
            for event in events
        )

    def inject_faults(self) -> None:
        """Fire the schedule's faults one after another: each is over before the next."""
        for threshold, event in self.schedule():
            while self.posted < threshold and not self.load_done.is_set():
                time.sleep(0.05)
            started = self.run.now()
            kind = event
            try:
                close_old_connections()  # a database fault may have killed the harness's own
                kind = self.fire(event)
            except Exception as error:  # a fault that could not be made is reported, not fatal
                logger.exception("fault %s", event)
                self.run.log_fault(f"{event} failed: {error!r}")
            self.run.windows.append((kind, started, self.run.now()))

    def fire(self, event: str) -> str:
        """Make the fault; the kind it was (a dead-letter fault says which)."""
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
                    proxies=self.db_proxies,
                    down_seconds=3,
                )
            )
        elif event == "poison":
            self.send_poison()
        elif event == "alarm":
            kind = ("memory", "disk")[self.run.fired["alarm"] % 2]
            self.run.log_fault(self.broker_control.alarm(kind, self.config.alarm_seconds, self.rng))
        elif event == "stale_dead_letter":
            self.dead_letter_a_stale_copy()
        elif event == "dead_letter_fault":
            faults = {
                "dead_letter_consumer_down": self.dead_letter_consumer_down,
                "dead_letter_database_down": self.dead_letter_database_down,
                "dead_letter_ack_lost": self.ack_lost,
            }
            kind = list(faults)[self.run.fired["dead_letter_fault"] % len(faults)]
            self.run.fired["dead_letter_fault"] += 1
            faults[kind]()
            return kind
        elif event == "channel_close_loop":
            self.close_worker_channels()
        elif event == "replay_during_outage":
            self.replay_during_outage()
        elif event == "same_name_restart":
            self.restart_worker_same_name()
        elif event == "relay_fault":
            kind = ("relay_kill", "relay_pause")[self.run.fired["relay_fault"] % 2]
            self.run.fired["relay_fault"] += 1
            self.relay_killed() if kind == "relay_kill" else self.relay_paused()
            return kind
        elif event == "receiver_fault":
            kinds = [*RECEIVER_FAULTS, "webhooks_worker_kill"]
            kind = kinds[self.run.fired["receiver_fault"] % len(kinds)]
            self.run.fired["receiver_fault"] += 1
            if kind == "webhooks_worker_kill":
                self.webhooks_worker_killed()
            else:
                self.receiver_fault(RECEIVER_FAULTS[kind])
            return kind
        self.run.fired[event] += 1
        return event

    def send_poison(self, kind: str | None = None, *, fault: str = "poison") -> str:
        """One poison message, made by `fault`; its message id."""
        kind = kind or self.rng.choice(["undecodable", "unknown_task", "bad_order_id"])
        message_id = str(uuid.uuid4())
        if kind == "undecodable":
            body = f"not json {message_id}".encode()
            publish_raw(
                self.config.broker_url,
                queue="fraud",
                body=body,
                content_type="application/json",
                headers={"id": message_id},
            )
        else:
            from config.celery import app

            name = "fraud.no_such_step" if kind == "unknown_task" else "billing.charge_order"
            app.send_task(name, kwargs={"order_id": "not-a-uuid"}, task_id=message_id)
        self.run.poison_sent += 1
        self.run.dead_letters_made(fault, [message_id])
        if fault == "poison":
            self.run.log_fault(f"poison message: {kind}")
        return message_id

    # --- faults around dead letters -----------------------------------------------------

    def dead_letter_a_stale_copy(self, *, fault: str = "stale_dead_letter") -> None:
        """A copy of fraud's message for an order that has moved on, dead-lettered as if its
        retries ran out: recorded STALE, and no order changes."""
        from messaging.models import OutboxMessage
        from ordering.models import Order

        close_old_connections()
        moved_on = Order.objects.exclude(status__in=["PENDING", "FAILED"]).order_by("-created_at")
        for order_id in moved_on.values_list("id", flat=True)[:50]:
            message = OutboxMessage.objects.filter(
                task_name="fraud.screen_order", kwargs__order_id=str(order_id)
            ).first()
            if message is not None and not self.run.made_dead_letter(message.id):
                break
        else:
            self.run.log_fault("stale dead letter: no order has moved on yet")
            return
        reject_copy(
            self.config.broker_url,
            task_name=message.task_name,
            message_id=message.id,
            kwargs=message.kwargs,
            headers=message.headers,
        )
        self.run.dead_letters_made(fault, [message.id])
        self.run.log_fault(f"a copy of fraud's message {message.id} dead-lettered, order moved on")

    def dead_letter_consumer_down(self) -> None:
        """The dead-letter consumer killed and kept down while dead letters arrive."""
        self._kill(self.deadletters)
        for _ in range(2):
            self.send_poison("unknown_task", fault="dead_letter_consumer_down")
        self.dead_letter_a_stale_copy(fault="dead_letter_consumer_down")
        time.sleep(self.config.dead_letter_down_seconds)
        self._restart_dead_letter_consumer()
        self.run.log_fault(
            f"dead-letter consumer SIGKILLed, {self.config.dead_letter_down_seconds:.0f} s down "
            "while dead letters arrived, restarted"
        )

    def dead_letter_database_down(self) -> None:
        """The dead-letter consumer's database away past its record attempts: what arrives is
        parked, then unparked by an operator (`manage.py deadletters unpark`) once it is back."""
        self.dead_letter_db_proxy.cut()
        try:
            for _ in range(3):
                self.send_poison("unknown_task", fault="dead_letter_database_down")
            time.sleep(self.config.dead_letter_down_seconds)
        finally:
            self.dead_letter_db_proxy.restore()
        time.sleep(5)  # the consumer's next try at what it still holds succeeds
        unparked = self._manage("deadletters", "unpark")
        self.run.log_fault(
            f"dead-letter consumer's database cut for {self.config.dead_letter_down_seconds:.0f} "
            f"s; then `deadletters unpark`: {unparked.stdout.strip() or unparked.stderr.strip()}"
        )

    def ack_lost(self) -> None:
        """The consumer records dead letters but its acks never reach the broker; it dies, and
        the broker delivers them again: recognised as recorded, counted once."""
        self.dead_letter_broker_proxy.drop_upstream()
        ids = [self.send_poison("unknown_task", fault="dead_letter_ack_lost") for _ in range(3)]
        recorded = wait_for_dead_letters(ids)
        self._kill(self.deadletters)
        self.dead_letter_broker_proxy.cut()  # the broker sees the connection go: redelivers
        self.dead_letter_broker_proxy.restore()
        self._restart_dead_letter_consumer()
        self.run.log_fault(
            f"dead-letter consumer's acks dropped: {recorded} of {len(ids)} recorded unacked, "
            "consumer SIGKILLed and restarted"
        )

    def close_worker_channels(self) -> None:
        """The workers' broker connections closed again and again: what they prefetched is
        delivered again each time (its delivery count grows) while no task fails."""
        closes = self.config.channel_closes
        lost_before = self._worker_log_count(CONNECTION_LOST)
        for _ in range(closes):
            for proxy in self.worker_broker_proxies:
                proxy.cut()
            time.sleep(0.5)
            for proxy in self.worker_broker_proxies:
                proxy.restore()
            time.sleep(3)
        lost = self._worker_log_count(CONNECTION_LOST) - lost_before
        self.run.log_fault(
            f"workers' broker connections closed {closes} times, 3.5 s apart; the workers "
            f"logged {lost} lost connection(s)"
        )

    def restart_worker_same_name(self) -> None:
        """A worker lost with its connection held half-open, restarted at once under its name:
        the broker still holds its exclusive pidbox queue, which the new worker must wait out."""
        n = self.rng.randrange(len(self.workers))
        started = time.monotonic()
        what = restart_worker_same_name(self.workers[n], self.worker_broker_proxies[n])
        missing = self.workers_not_answering([self.worker_names[n]], timeout=90)
        waited = time.monotonic() - started
        answer = "never answered ping" if missing else f"answered ping after {waited:.0f} s"
        self.run.log_fault(f"{what}; {answer}")

    def workers_not_answering(
        self, names: list[str] | None = None, timeout: float = 60
    ) -> list[str]:
        """The workers (by node name; default all) that do not answer remote control."""
        from config.celery import app

        return workers_answering(app, names or self.worker_names, timeout=timeout)

    def _worker_log_count(self, text: str) -> int:
        return sum(
            worker.log_path.read_text(errors="replace").count(text) for worker in self.workers
        )

    def replay_during_outage(self) -> None:
        """Live billing messages dead-lettered while their orders wait, then replayed from the
        admin and the command line at once while the broker is away."""
        from config.celery import app
        from messaging.models import DeadLetter

        app.control.cancel_consumer("billing", reply=True, timeout=5)
        try:
            killed = take_and_reject(self.config.broker_url, "billing", count=2, timeout=30)
        finally:
            app.control.add_consumer("billing", reply=True, timeout=5)
        self.run.dead_letters_made("replay_during_outage", killed)
        wait_for_dead_letters(killed)
        new = list(
            DeadLetter.objects.filter(message_id__in=killed, status=DeadLetter.Status.NEW)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        results = {}
        with self.broker_control.outage() as how:
            if new:
                admin = AdminSession(self.base_url, *self.operator())
                replays = [
                    threading.Thread(
                        target=lambda: results.__setitem__(
                            "admin",
                            admin.post_form(
                                "/admin/messaging/deadletter/",
                                [("action", "replay_selected")]
                                + [("_selected_action", str(pk)) for pk in new],
                            ).status,
                        )
                    ),
                    threading.Thread(
                        target=lambda: results.__setitem__(
                            "cli",
                            self._manage(
                                "deadletters", "replay", *(f"--id={pk}" for pk in new)
                            ).returncode,
                        )
                    ),
                ]
                for replay in replays:
                    replay.start()
                for replay in replays:
                    replay.join(90)
            time.sleep(2)
        self.run.log_fault(
            f"{len(killed)} waiting billing message(s) dead-lettered, {len(new)} NEW replayed "
            f"from the admin and the CLI at once during {how} (admin HTTP {results.get('admin')}, "
            f"CLI exit {results.get('cli')})"
        )

    def operator(self) -> tuple[str, str]:
        """A staff user of the run's admin: (username, password)."""
        from django.contrib.auth import get_user_model

        users = get_user_model()
        if not users.objects.filter(username="chaos-operator").exists():
            users.objects.create_superuser("chaos-operator", password="chaos-operator-pw")  # noqa: S106
        return "chaos-operator", "chaos-operator-pw"

    def relay_killed(self) -> None:
        """The relay, on every message's path, SIGKILLed (mid-pass, perhaps mid-publish) and
        kept down while orders keep coming; restarted, it must publish the backlog."""
        self._kill(self.relay)
        time.sleep(self.config.relay_down_seconds)
        waiting = _unpublished()
        self.relay.start()
        self.run.log_fault(
            f"relay SIGKILLed, {self.config.relay_down_seconds:.0f} s down with {waiting} "
            f"unpublished outbox rows waiting; restarted, {self._backlog_published()}"
        )

    def relay_paused(self) -> None:
        """The relay frozen (SIGSTOP) wherever it was, its locks and its broker connection
        held, then resumed: what it had in flight must still go out, once."""
        os.killpg(self.relay.process.pid, signal.SIGSTOP)
        try:
            time.sleep(self.config.relay_down_seconds)
            waiting = _unpublished()
        finally:
            os.killpg(self.relay.process.pid, signal.SIGCONT)
        self.run.log_fault(
            f"relay paused (SIGSTOP) for {self.config.relay_down_seconds:.0f} s with {waiting} "
            f"unpublished outbox rows waiting; resumed, {self._backlog_published()}"
        )

    def _backlog_published(self, timeout: float = 60) -> str:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if _unpublished() == 0:
                return f"the backlog published in {time.monotonic() - started:.1f} s"
            time.sleep(0.2)
        return f"{_unpublished()} still unpublished after {timeout:.0f} s"

    def receiver_fault(self, mode: str) -> None:
        """The webhook receiver down (its port closed), answering past the sender's timeout,
        or answering 500, while orders keep coming; back to OK, what waited must end."""
        seconds = self.config.receiver_fault_seconds
        heard = len(self.receiver.received)
        self.receiver.set(mode)
        try:
            time.sleep(seconds)
        finally:
            self.receiver.set(OK)
        back = time.monotonic()
        waiting = _pending_deliveries()
        caught_up = self._deliveries_ended(waiting)
        time.sleep(
            max(0.0, back + self.receiver.delay - time.monotonic())
        )  # a slow answer is recorded when given
        not_taken = sum(1 for r in self.receiver.received[heard:] if r.status != 200)
        what = {
            DOWN: "down (port closed)",
            SLOW: f"answering after {self.receiver.delay:g} s (the sender waits "
            f"{WEBHOOK_TIMEOUT_SECONDS} s)",
            ERROR: f"answering {self.receiver.status}",
        }[mode]
        took = "" if mode == DOWN else f"{not_taken} request(s) not taken, "
        self.run.log_fault(
            f"webhook receiver {what} for {seconds:.0f} s: {took}{len(waiting)} deliveries "
            f"pending; back to OK, {caught_up}"
        )

    def webhooks_worker_killed(self) -> None:
        """The webhooks worker SIGKILLed with its pool while a request is out (the receiver
        slow to answer), then started again as a supervisor would. What it held, the request
        and what it had prefetched, comes back from the broker and must end: sent again,
        so the receiver may take it twice."""
        heard = len(self.receiver.received)
        self.receiver.set(SLOW)
        try:
            deadline = time.monotonic() + 30
            while len(self.receiver.received) == heard and time.monotonic() < deadline:
                time.sleep(0.02)  # until a request is out
            out = len(self.receiver.received) - heard
            held = _pending_deliveries()
            killed = kill_worker(self.webhooks_worker)
        finally:
            self.receiver.set(OK)
        caught_up = self._deliveries_ended(held, timeout=120)
        self.run.log_fault(
            f"{killed}, {out} request(s) out and {len(held)} deliveries pending; {caught_up}"
        )

    def _deliveries_ended(self, delivery_ids: set, timeout: float = 60) -> str:
        started = time.monotonic()
        while (left := len(delivery_ids & _pending_deliveries())) and (
            time.monotonic() - started < timeout
        ):
            time.sleep(0.2)
        if left:
            return f"{left} of them still pending after {timeout:.0f} s"
        return f"they ended in {time.monotonic() - started:.1f} s"

    def _kill(self, process: ManagedProcess) -> None:
        os.killpg(process.process.pid, signal.SIGKILL)
        process.process.wait(10)

    def _restart_dead_letter_consumer(self) -> None:
        self.deadletters.start()
        self.deadletters.wait_for_output("dead-letter consumer ready", timeout=60)

    def _manage(self, *args: str) -> subprocess.CompletedProcess:
        """A manage.py command as an operator runs it, with the system's settings."""
        return subprocess.run(  # noqa: S603 - our own command
            python_argv("manage.py", *args),
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

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
                # A delivery waiting out a retry's delay is in no queue the run measures.
                undelivered = len(_pending_deliveries())
                depths = {q: queue_depth(self.config.broker_url, q) for q in MEASURED_QUEUES}
            except Exception as error:  # still recovering from a fault
                logger.info("settling: %s", error)
                quiet = 0
                time.sleep(1)
                continue
            busy = unfinished or unpublished or undelivered or any(depths.values())
            quiet = 0 if busy else quiet + 1
            if time.monotonic() - started > self.config.settle_timeout:
                logger.error(
                    "did not settle: %s unfinished, %s unpublished, %s webhook deliveries "
                    "pending, %s",
                    unfinished,
                    unpublished,
                    undelivered,
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


def _unpublished() -> int:
    from messaging.models import OutboxMessage

    return OutboxMessage.objects.filter(published_at__isnull=True).count()


def _pending_deliveries() -> set[uuid.UUID]:
    from webhooks.models import WebhookDelivery

    close_old_connections()
    pending = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING)
    return set(pending.values_list("id", flat=True))


def wait_for_dead_letters(message_ids, timeout: float = 30) -> int:
    """Wait until the dead letters of these messages are recorded; how many are."""
    from messaging.models import DeadLetter

    deadline = time.monotonic() + timeout
    while (recorded := DeadLetter.objects.filter(message_id__in=message_ids).count()) < len(
        message_ids
    ) and time.monotonic() < deadline:
        time.sleep(0.2)
        close_old_connections()
    return recorded


def _via(url: str, proxy: TcpProxy) -> str:
    """`url` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    credentials = parts.netloc.rsplit("@", 1)[0] if "@" in parts.netloc else ""
    netloc = f"{credentials}@127.0.0.1:{proxy.port}" if credentials else f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))
