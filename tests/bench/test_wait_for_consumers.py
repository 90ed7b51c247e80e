"""The benchmark waits for its workers on a broker that has never seen its queues."""

import threading
import time
import uuid

import pytest
from kombu import Connection, Queue

from bench.common import wait_for_consumers
from config.celery import app

pytestmark = pytest.mark.broker


def test_a_queue_not_declared_yet_is_waited_for_until_a_consumer_declares_it(monkeypatch):
    monkeypatch.setenv("CELERY_BROKER_URL", app.conf.broker_url)  # the test run's own vhost
    queue = Queue(f"bench-wait-{uuid.uuid4().hex[:8]}", auto_delete=True)
    consuming = threading.Event()
    done = threading.Event()

    def late_worker() -> None:
        time.sleep(1.5)  # the worker starts after the bench began waiting
        with Connection(app.conf.broker_url) as connection, connection.Consumer(queue):
            consuming.set()
            done.wait(10)

    worker = threading.Thread(target=late_worker)
    worker.start()
    try:
        wait_for_consumers(queue.name, timeout=20)
        assert consuming.is_set()
    finally:
        done.set()
        worker.join()
