"""Retries, dead letters and replay on the real system: nothing vanishes, nothing loops.

Every test ends (in the `system` fixture) with the work queues and dead_letter empty.
"""

import json
import os
import pickle
import re
import threading
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model

from billing.models import Charge
from chaos.broker import publish_raw, queue_depth
from config.celery import app
from fakegateway.models import FakeGatewayCharge, FakeGatewayFault
from messaging import deadletters
from messaging.models import DeadLetter, OutboxMessage
from messaging.topology import DEAD_LETTER_QUEUE
from ordering.errors import StepNotReplayable
from ordering.models import Order

from ..live.wait import wait_until
from .test_pipeline import charges_at_gateway, post_order, wait_for_terminal

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]

DEATH_TIMEOUT = 5  # seconds from a message's death to its DeadLetter row
# A message that kills its worker process dies of the delivery limit after
# BROKER_DELIVERY_LIMIT + 1 deliveries; Celery notices each lost process about 5 s after it
# took the message, so the wait grows with the limit.
CRASH_LOOP_TIMEOUT = 30 + 8 * (settings.BROKER_DELIVERY_LIMIT + 1)


def dead_letter_of(message_id, timeout: float = DEATH_TIMEOUT) -> DeadLetter:
    return wait_until(
        lambda: DeadLetter.objects.filter(message_id=str(message_id)).first(),
        timeout=timeout,
        what=f"a dead letter for {message_id}",
    )


def billing_message_of(order_id) -> OutboxMessage:
    return wait_until(
        lambda: OutboxMessage.objects.filter(
            task_name="billing.charge_order", kwargs__order_id=str(order_id)
        ).first(),
        what="the billing message",
    )


def wait_for_status(order_id, status: str, timeout: float = 30) -> Order:
    return wait_until(
        lambda: Order.objects.filter(pk=order_id, status=status).first(),
        timeout=timeout,
        what=f"order {order_id} to be {status}",
    )


@pytest.fixture
def operator(db):
    return get_user_model().objects.create_superuser("operator", "op@example.com", "pw")


class DelayedQueueWatcher(threading.Thread):
    """Samples Celery's native delayed-delivery queues: a retry waiting in RabbitMQ shows there."""

    LEVELS = range(4)  # delays of up to 15 s

    def __init__(self, broker_url: str) -> None:
        super().__init__(daemon=True)
        self.broker_url = broker_url
        self.most_seen = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            waiting = sum(queue_depth(self.broker_url, f"celery_delayed_{n}") for n in self.LEVELS)
            self.most_seen = max(self.most_seen, waiting)
            time.sleep(0.05)


def test_a_transient_failure_twice_then_success_retries_through_the_broker_with_growing_delays(
    system, buyer_api
):
    FakeGatewayFault.objects.create(remaining=2)
    watcher = DelayedQueueWatcher(system.broker_url)
    watcher.start()

    order = wait_for_terminal(post_order(buyer_api))
    watcher.stopped.set()

    assert order.status == "PROCESSED"
    assert Charge.objects.get(order=order).attempts == 3
    assert charges_at_gateway(order.id) == 1
    billing_id = billing_message_of(order.id).id
    delays = re.findall(
        rf"charge_order\[{billing_id}\] retry: Retry in (\d+)s", system.worker.output()
    )
    assert [int(d) for d in delays] == [1, 2]
    assert watcher.most_seen >= 1, "the retry never waited in RabbitMQ"


def test_exhausted_retries_dead_letter_the_step_and_fail_the_order_then_a_replay_completes_it(
    system, buyer_api, operator
):
    fault = FakeGatewayFault.objects.create(remaining=1000)
    order_id = post_order(buyer_api)

    failed = wait_for_status(order_id, "FAILED")
    dead_letter = dead_letter_of(billing_message_of(order_id).id)

    assert failed.failed_from == "APPROVED"
    assert (dead_letter.queue, dead_letter.task_name, dead_letter.reason) == (
        "billing",
        "billing.charge_order",
        "rejected",
    )
    assert dead_letter.subject_id == order_id
    assert "GatewayTimeout" in deadletters.last_error_of(dead_letter)

    fault.delete()  # the operator fixes the cause...
    deadletters.replay(dead_letter_id=dead_letter.pk, actor=operator)  # ...and replays

    order = wait_for_terminal(order_id)
    assert order.status == "PROCESSED"
    assert charges_at_gateway(order_id) == 1
    dead_letter.refresh_from_db()
    assert (dead_letter.status, dead_letter.acted_by, dead_letter.replay_count) == (
        "REPLAYED",
        operator,
        1,
    )
    statuses = list(order.events.order_by("version").values_list("to_status", flat=True))
    assert statuses == ["PENDING", "APPROVED", "FAILED", "APPROVED", "PROCESSED"]

    # Replaying it again is refused: the order has passed billing. Nothing changes.
    with pytest.raises(StepNotReplayable, match="is PROCESSED: it has passed billing"):
        deadletters.replay(dead_letter_id=dead_letter.pk, actor=operator)
    system.wait_until_idle()
    assert Order.objects.get(pk=order_id).version == order.version
    assert charges_at_gateway(order_id) == 1


def send_task(name: str, **kwargs) -> str:
    message_id = str(uuid.uuid4())
    app.send_task(name, kwargs=kwargs, task_id=message_id)
    return message_id


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("fraud.screen_order", {"order_id": "not-a-uuid"}),
        ("fraud.screen_order", {"order": "misspelt field"}),
        ("fraud.screen_order", {"order_id": "00000000-0000-4000-8000-000000000000"}),
        ("billing.charge_order", {"order_id": "00000000-0000-4000-8000-000000000000"}),
        ("fraud.no_such_step", {"order_id": "00000000-0000-4000-8000-000000000000"}),
        ("billing.no_such_step", {}),
    ],
    ids=[
        "invalid-order-id",
        "unexpected-field",
        "missing-order",
        "missing-order-billing",
        "unknown-task",
        "unknown-task-billing",
    ],
)
def test_a_poison_task_message_is_dead_lettered_at_once(system, name, kwargs):
    message_id = send_task(name, **kwargs)

    dead_letter = dead_letter_of(message_id)

    assert dead_letter.reason == "rejected"
    assert dead_letter.queue == name.split(".")[0]
    assert dead_letter.task_name == name
    assert dead_letter.death_count == 1


@pytest.mark.parametrize("queue", ["fraud", "billing"])
def test_an_undecodable_body_is_dead_lettered_byte_for_byte(system, queue):
    body = b'{"not json at all \xff\xfe'
    publish_raw(system.broker_url, queue=queue, body=body, content_type="application/json")

    dead_letter = wait_until(
        lambda: DeadLetter.objects.filter(queue=queue).first(), timeout=DEATH_TIMEOUT
    )

    assert bytes(dead_letter.body) == body
    assert dead_letter.reason == "rejected"
    assert dead_letter.message_id.startswith("sha256:")


class _LeavesAMark:
    """Unpickling this creates a file: proof that a pickle body was (or was not) executed."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mknod, (str(self.path),))


def test_a_pickle_message_is_dead_lettered_not_executed(system, tmp_path):
    mark = tmp_path / "unpickled"
    body = pickle.dumps(((), {"order_id": str(uuid.uuid4())}, _LeavesAMark(mark)))
    message_id = str(uuid.uuid4())
    headers = {"task": "fraud.screen_order", "id": message_id, "lang": "py"}
    publish_raw(
        system.broker_url,
        queue="fraud",
        body=body,
        content_type="application/x-python-serialize",
        headers=headers,
    )

    dead_letter = dead_letter_of(message_id)

    assert bytes(dead_letter.body) == body
    assert not mark.exists()


FORGED_BODIES = {
    "unknown fields: amount, buyer": lambda order_id: [
        [],
        {"order_id": order_id, "amount": "0.01", "buyer": 1},
        {},
    ],
    "linked tasks are not accepted: callbacks": lambda order_id: [
        [],
        {"order_id": order_id},
        {"callbacks": [{"task": "billing.charge_order", "kwargs": {"order_id": order_id}}]},
    ],
}


@pytest.mark.parametrize(("refusal", "forge"), FORGED_BODIES.items())
def test_a_forged_charge_message_is_refused_by_its_schema_and_charges_nothing(
    system, buyer_api, refusal, forge
):
    order_id = post_order(buyer_api)
    assert wait_for_terminal(order_id).status == "PROCESSED"
    message_id = str(uuid.uuid4())

    publish_raw(
        system.broker_url,
        queue="billing",
        body=json.dumps(forge(str(order_id))).encode(),
        content_type="application/json",
        headers={"task": "billing.charge_order", "id": message_id, "lang": "py"},
    )

    dead_letter = dead_letter_of(message_id)
    assert dead_letter.reason == "rejected"
    assert refusal in deadletters.last_error_of(dead_letter)
    assert charges_at_gateway(order_id) == 1
    assert (
        Charge.objects.get(order_id=order_id).amount_minor
        == Order.objects.get(pk=order_id).total_minor
    )


@pytest.mark.timeout(CRASH_LOOP_TIMEOUT + 60)
def test_a_message_that_kills_its_worker_is_dead_lettered_by_the_delivery_limit(
    system, buyer_api, operator
):
    # Hold the order's message back until its fault is planted: the pipeline is fast enough
    # to finish the order between the POST and the next line otherwise.
    system.proxy.cut()
    doomed = post_order(buyer_api)
    FakeGatewayFault.objects.create(remaining=1000, crash=True, order_ref=str(doomed))
    system.proxy.restore()

    healthy = post_order(buyer_api, product_name="Spoon")
    failed = wait_for_status(doomed, "FAILED", timeout=CRASH_LOOP_TIMEOUT)
    dead_letter = dead_letter_of(billing_message_of(doomed).id)

    assert wait_for_terminal(healthy).status == "PROCESSED"  # the worker kept serving
    assert failed.failed_from == "APPROVED"
    assert dead_letter.reason == "delivery_limit"
    assert system.worker.running

    FakeGatewayFault.objects.all().delete()
    deadletters.replay(dead_letter_id=dead_letter.pk, actor=operator)
    assert wait_for_terminal(doomed).status == "PROCESSED"
    assert charges_at_gateway(doomed) == 1
    assert FakeGatewayCharge.objects.filter(order_ref=str(doomed)).count() == 1


def test_dead_letters_wait_for_a_restarted_consumer(system):
    system.deadletters.stop()
    try:
        message_ids = [send_task("fraud.no_such_step") for _ in range(3)]
        wait_until(lambda: queue_depth(system.broker_url, DEAD_LETTER_QUEUE) == 3, timeout=10)
    finally:
        system.deadletters.start()

    for message_id in message_ids:
        dead_letter_of(message_id, timeout=15)
    assert queue_depth(system.broker_url, DEAD_LETTER_QUEUE) == 0
