"""Looking into RabbitMQ from tests: queue depths, purges, raw publishes."""

import time

from kombu import Connection, Producer

from messaging.broker import broker_ssl
from messaging.parking import declare_dead_letter_queues
from messaging.topology import DEAD_LETTER_QUEUE, PARKING_QUEUE, WORK_QUEUES, declare_topology


def connect(url: str) -> Connection:
    connection = Connection(url, ssl=broker_ssl(url), connect_timeout=5)
    connection.ensure_connection(max_retries=3)
    return connection


def queue_depth(url: str, name: str) -> int:
    """Messages ready in a queue (passive declare: never creates it)."""
    with connect(url) as connection:
        _, count, _ = connection.default_channel.queue_declare(queue=name, passive=True)
        return count


def broker_server_version(url: str) -> str:
    """The version the broker names in its connection handshake (3.10.8, 4.0.5...)."""
    with connect(url) as connection:
        version = connection.connection.server_properties.get("version", "unknown")
        return version.decode() if isinstance(version, bytes) else str(version)


def consumers_on_work_queues(url: str) -> dict[str, int]:
    """Queues that some process is consuming from right now (passive declares)."""
    with connect(url) as connection:
        declare_topology(connection)
        counts = {
            name: connection.default_channel.queue_declare(queue=name, passive=True)[2]
            for name in (*WORK_QUEUES, DEAD_LETTER_QUEUE)
        }
    return {name: count for name, count in counts.items() if count}


def reset_topology(url: str) -> None:
    """Delete the queues, with whatever earlier runs left in them, and declare them afresh.

    Work queues are deleted rather than purged: RabbitMQ refuses to redeclare a queue with
    other arguments (a new BROKER_DELIVERY_LIMIT, say). A dead_letter queue an older version
    declared is replaced, as the release phase does.
    """
    with connect(url) as connection:
        for name in WORK_QUEUES:
            connection.default_channel.queue_delete(name)
        declare_dead_letter_queues(connection)
        declare_topology(connection)
        for name in (DEAD_LETTER_QUEUE, PARKING_QUEUE):
            connection.default_channel.queue_purge(name)


def publish_raw(
    url: str, *, queue: str, body: bytes, content_type: str, headers: dict | None = None
) -> None:
    """Publish bytes to a work queue's exchange as any client could, bypassing Celery."""
    with connect(url) as connection:
        Producer(connection.default_channel).publish(
            body,
            exchange=queue,
            routing_key=queue,
            headers=headers or {},
            content_type=content_type,
            content_encoding="utf-8" if content_type == "application/json" else "binary",
            delivery_mode=2,
        )


def wait_for_empty_work_queues(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        depths = {name: queue_depth(url, name) for name in WORK_QUEUES}
        if not any(depths.values()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"messages left in the work queues: {depths}")
        time.sleep(0.2)
