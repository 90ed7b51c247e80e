"""Looking into RabbitMQ from tests: queue depths, purges, raw publishes."""

import time

from kombu import Connection

from messaging.topology import WORK_QUEUES, declare_topology


def connect(url: str) -> Connection:
    connection = Connection(url, connect_timeout=5)
    connection.ensure_connection(max_retries=3)
    return connection


def queue_depth(url: str, name: str) -> int:
    """Messages ready in a queue (passive declare: never creates it)."""
    with connect(url) as connection:
        _, count, _ = connection.default_channel.queue_declare(queue=name, passive=True)
        return count


def reset_topology(url: str) -> None:
    """Declare the topology and empty the work queues of whatever earlier runs left."""
    with connect(url) as connection:
        declare_topology(connection)
        for name in WORK_QUEUES:
            connection.default_channel.queue_purge(name)


def wait_for_empty_work_queues(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        depths = {name: queue_depth(url, name) for name in WORK_QUEUES}
        if not any(depths.values()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"messages left in the work queues: {depths}")
        time.sleep(0.2)
