"""The faults the harness injects, each a small function over the running system."""

import contextlib
import logging
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

from messaging.topology import DEAD_LETTER_EXCHANGE

from .cluster import RabbitCluster
from .node import (
    ALARM_DISK_FREE_LIMIT,
    ALARM_MEMORY_WATERMARK,
    NORMAL_DISK_FREE_LIMIT,
    NORMAL_MEMORY_WATERMARK,
)
from .processes import ManagedProcess
from .proxy import TcpProxy

# Where the harness dead-letters copies of step messages (reject_copy).
REJECTS_QUEUE = "chaos_rejects"

logger = logging.getLogger("chaos")


def children_of(pid: int) -> list[int]:
    """Direct children of a process (a celery worker's pool processes)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(child) for child in children.read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


def kill_worker_child(worker: ManagedProcess, rng: random.Random) -> str:
    """SIGKILL one pool process of a worker, as the OOM killer would."""
    deadline = time.monotonic() + 30
    while not (children := children_of(worker.process.pid)) and time.monotonic() < deadline:
        time.sleep(0.2)  # a worker that was just restarted is still forking its pool
    if not children:
        return f"{worker.name}: no pool process to kill"
    victim = rng.choice(children)
    os.kill(victim, signal.SIGKILL)
    return f"SIGKILL pool process {victim} of {worker.name}"


def kill_worker(worker: ManagedProcess) -> str:
    """SIGKILL a worker with its pool, then start a new one, as a supervisor would."""
    pid = worker.process.pid
    os.killpg(pid, signal.SIGKILL)
    worker.process.wait(10)
    worker.start()
    return f"SIGKILL worker {worker.name} (pid {pid}) and all its children; restarted"


class BrokerControl:
    """Breaks the run's broker: the nodes the run owns (real restarts and alarms), else the
    proxies every process reaches the broker through (cuts; no alarm is possible)."""

    def __init__(self, proxies: list[TcpProxy], cluster: RabbitCluster | None = None) -> None:
        self.proxies = proxies
        self.cluster = cluster  # None: a broker other clients may share, never stopped here

    @property
    def mode(self) -> str:
        return "a node of the run's own" if self.cluster else "proxy cuts"

    def restart(self, down_seconds: float) -> str:
        with self.outage() as how:
            time.sleep(down_seconds)
        return f"{how}, {down_seconds:.0f} s down"

    @contextlib.contextmanager
    def outage(self) -> Iterator[str]:
        """The broker away for the block: its one node's application stopped, or every
        connection to it cut at the proxies."""
        if self.cluster is not None and len(self.cluster.nodes) == 1:
            node = self.cluster.nodes[0]
            self.cluster.ctl(node, "stop_app", timeout=120)
            try:
                yield "RabbitMQ stop_app"
            finally:
                self.cluster.ctl(node, "start_app", timeout=120)
                self.cluster.ctl(node, "await_startup", timeout=120)
            return
        for proxy in self.proxies:
            proxy.cut()
        try:
            yield "broker connections cut at the proxies"
        finally:
            for proxy in self.proxies:
                proxy.restore()

    def alarm(self, kind: str, seconds: float, rng: random.Random) -> str:
        """A memory or disk alarm on one node for `seconds`: publishers blocked cluster-wide,
        confirms withheld."""
        if self.cluster is None:
            raise RuntimeError("an alarm needs a node of the run's own (--broker node)")
        node = rng.choice(self.cluster.nodes)
        setting = {
            "memory": ("set_vm_memory_high_watermark", ALARM_MEMORY_WATERMARK),
            "disk": ("set_disk_free_limit", ALARM_DISK_FREE_LIMIT),
        }[kind]
        self.cluster.ctl(node, *setting, timeout=60)
        try:
            time.sleep(seconds / 2)
            active = self.cluster.ctl(
                node, "alarms", tool="rabbitmq-diagnostics", timeout=30, check=False
            ).stdout
            time.sleep(seconds / 2)
        finally:
            self.cluster.ctl(
                node, "set_vm_memory_high_watermark", NORMAL_MEMORY_WATERMARK, timeout=60
            )
            self.cluster.ctl(node, "set_disk_free_limit", NORMAL_DISK_FREE_LIMIT, timeout=60)
        seen = "seen active" if kind in active.lower() else "NOT seen active"
        return f"{kind} alarm on {node.name} for {seconds:.0f} s ({seen} halfway)"


def reject_copy(
    broker_url: str, *, task_name: str, message_id, kwargs: dict, headers: dict
) -> None:
    """Dead-letter a copy of a step's message the way RabbitMQ dead-letters a message a worker
    rejects when its retries ran out: the copy goes to a queue of the harness's own with the
    work queues' dead-letter arguments, is taken and rejected there, and the broker moves it
    to `dead_letter` with death headers of its own making."""
    from kombu import Connection, Producer

    from config.celery import app
    from messaging.broker import broker_ssl

    queue = app.amqp.router.route({}, task_name)["queue"].name
    with Connection(broker_url, ssl=broker_ssl(broker_url), connect_timeout=5) as connection:
        channel = connection.channel()
        channel.queue_declare(
            queue=REJECTS_QUEUE,
            durable=True,
            arguments={
                "x-queue-type": "classic",
                "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
                "x-dead-letter-routing-key": queue,
            },
        )
        message = app.amqp.as_task_v2(str(message_id), task_name, kwargs=kwargs)  # Celery's own
        Producer(channel).publish(
            message.body,
            exchange="",
            routing_key=REJECTS_QUEUE,
            headers={**message.headers, **headers},
            serializer="json",
            delivery_mode=2,
            **message.properties,
        )
        copy = None
        deadline = time.monotonic() + 10
        while copy is None and time.monotonic() < deadline:
            copy = channel.basic_get(queue=REJECTS_QUEUE)
            if copy is None:
                time.sleep(0.1)
        if copy is None:
            raise RuntimeError(f"the copy of {message_id} never reached {REJECTS_QUEUE}")
        channel.basic_reject(copy.delivery_tag, requeue=False)


def take_and_reject(broker_url: str, queue: str, *, count: int, timeout: float) -> set[str]:
    """Take up to `count` ready messages off a work queue and reject them, as a worker rejects
    a message whose retries ran out: RabbitMQ dead-letters them. Their message ids."""
    from kombu import Connection

    from messaging.broker import broker_ssl

    taken: set[str] = set()
    deadline = time.monotonic() + timeout
    with Connection(broker_url, ssl=broker_ssl(broker_url), connect_timeout=5) as connection:
        channel = connection.channel()
        while len(taken) < count and time.monotonic() < deadline:
            message = channel.basic_get(queue=queue)
            if message is None:
                time.sleep(0.2)
                continue
            channel.basic_reject(message.delivery_tag, requeue=False)
            taken.add(str(message.headers["id"]))
    return taken


def database_fault(
    *, admin_url: str, database: str, proxies: list[TcpProxy], down_seconds: float
) -> str:
    """Terminate every connection to the run's database, then keep it unreachable a while."""
    with psycopg.connect(admin_url, autocommit=True) as connection:
        killed = connection.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchone()[0]
    for proxy in proxies:
        proxy.cut()
    time.sleep(down_seconds)
    for proxy in proxies:
        proxy.restore()
    return f"pg_terminate_backend on {killed} connection(s), then {down_seconds:.0f} s outage"


def _run(argv: list[str]) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=120)  # noqa: S603
