"""A private RabbitMQ node for the tests that break their broker (resource alarms).

It listens on ORDERFLOW_PRIVATE_RABBITMQ_PORT (default 5691; distribution on that + 20000,
its epmd on that - 1300), so tests on one machine that need one each can be told apart.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager

from kombu import pools

from chaos.node import PrivateNode
from config.celery import app

PORT = int(os.environ.get("ORDERFLOW_PRIVATE_RABBITMQ_PORT", "5691"))


@contextmanager
def private_node(name: str = "tests") -> Iterator[PrivateNode]:
    """A fresh node, stopped (and its directory left for the logs) at the end."""
    node = PrivateNode(name=name, port=PORT)
    node.start()
    try:
        yield node
    finally:
        node.stop()


@contextmanager
def celery_app_on(url: str) -> Iterator[None]:
    """This process's Celery app publishing to `url` (over TLS for amqps://), then to its own
    broker again."""
    from messaging import broker

    own_url, own_env = app.conf.broker_url, os.environ.get("CELERY_BROKER_URL")
    own_ssl = app.conf.broker_use_ssl
    own_declared = broker._topology_declared
    _reset_pools()
    # Celery reads CELERY_BROKER_URL from the environment before its configuration.
    os.environ["CELERY_BROKER_URL"] = url
    app.conf.broker_url = url
    app.conf.broker_use_ssl = broker.broker_ssl(url)
    broker._topology_declared = False  # a new broker has none of the queues yet
    try:
        yield
    finally:
        _reset_pools()
        if own_env is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = own_env
        app.conf.broker_url = own_url
        app.conf.broker_use_ssl = own_ssl
        broker._topology_declared = own_declared


def _reset_pools() -> None:
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None
