"""Fixtures of the messaging tests: a broker that records what it is sent."""

import threading
import time
import uuid

import pytest
from kombu.exceptions import OperationalError

from messaging import outbox
from messaging.broker import Confirms


class RecordingBroker:
    """Stands in for messaging.broker.send_message, where the outbox looks it up."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.down_for: set[uuid.UUID] = set()  # publishing these raises a broker error
        self.delay = 0.0  # seconds each publish takes
        self._lock = threading.Lock()

    def __call__(
        self, *, task_name: str, message_id: uuid.UUID, kwargs: dict, headers: dict
    ) -> None:
        if self.delay:
            time.sleep(self.delay)
        if message_id in self.down_for:
            raise OperationalError("[Errno 111] Connection refused")
        with self._lock:
            self.sent.append(
                {
                    "task_name": task_name,
                    "task_id": message_id,
                    "kwargs": kwargs,
                    "headers": headers,
                }
            )

    def send_batch(self, messages: list[dict]) -> Confirms:
        """Stands in for messaging.broker.send_messages: each message confirmed or not."""
        confirms = Confirms()
        for message in messages:
            try:
                self(**message)
            except OperationalError as error:
                confirms.failed[message["message_id"]] = str(error)
            else:
                confirms.confirmed.add(message["message_id"])
        return confirms

    @property
    def task_ids(self) -> list[uuid.UUID]:
        return [message["task_id"] for message in self.sent]


@pytest.fixture(autouse=True)
def broker(monkeypatch) -> RecordingBroker:
    """Every test here publishes to this fake; RabbitMQ is never touched."""
    fake = RecordingBroker()
    monkeypatch.setattr(outbox, "send_message", fake)
    monkeypatch.setattr(outbox, "send_messages", fake.send_batch)
    return fake


@pytest.fixture
def publish_on_commit(settings) -> None:
    """Production's after-commit publish (the suite turns it off), into the recording broker."""
    settings.OUTBOX_PUBLISH_ON_COMMIT = True
