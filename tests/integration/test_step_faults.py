"""Faults around a step's copies, dead letters and replays, on the real broker and worker.

Each reproduces a way an accepted order used to be stranded: a stale copy of a step that
died after the order moved on, and replays while the broker is away (from the admin and the
command line at once). The worker's consumers are paused per queue (Celery's remote
control) where a test needs a message to wait, so nothing depends on timing.
"""

import contextlib
import subprocess
import threading
import uuid

import pytest
from kombu import Connection

from chaos.http import AdminSession
from chaos.processes import ROOT, python_argv
from config.celery import app
from fakegateway.models import FakeGatewayFault
from messaging import broker
from messaging.models import DeadLetter, OutboxMessage
from ordering.models import Order

from ..factories import web_superuser
from ..live.system import process_env, via_proxy
from ..live.wait import wait_until
from .test_dead_letters import billing_message_of, dead_letter_of, wait_for_status
from .test_pipeline import charges_at_gateway, history, post_order, wait_for_terminal

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]


@contextlib.contextmanager
def worker_paused(system, *queues: str):
    """The worker stops taking messages from these queues until the block ends."""
    destination = [system.worker_name]
    for queue in queues:
        assert app.control.cancel_consumer(queue, destination=destination, reply=True)
    try:
        yield
    finally:
        for queue in queues:
            app.control.add_consumer(queue, destination=destination, reply=True)


def kill_a_copy(system, message: OutboxMessage, queue: str) -> None:
    """Publish another copy of an outbox message and have it rejected, as a worker does with
    a message whose retries ran out: RabbitMQ dead-letters it from `queue`."""
    broker.send_message(
        task_name=message.task_name,
        message_id=message.id,
        kwargs=message.kwargs,
        headers=message.headers,
    )
    with Connection(system.broker_url) as connection:
        channel = connection.default_channel
        copy = wait_until(lambda: channel.basic_get(queue=queue), timeout=10)
        assert copy.headers["id"] == str(message.id)
        channel.basic_reject(copy.delivery_tag, requeue=False)


def fraud_message_of(order_id) -> OutboxMessage:
    return OutboxMessage.objects.get(task_name="fraud.screen_order", kwargs__order_id=str(order_id))


def test_a_stale_copy_of_fraud_dead_lettered_while_billing_waits_leaves_the_order_to_finish(
    system, buyer_api
):
    with worker_paused(system, "billing"):
        order_id = post_order(buyer_api)
        wait_for_status(order_id, "APPROVED")  # billing's message waits in its queue
        with worker_paused(system, "fraud"):
            kill_a_copy(system, fraud_message_of(order_id), "fraud")
            dead_letter = wait_until(
                lambda: DeadLetter.objects.filter(
                    message_id=str(fraud_message_of(order_id).id)
                ).first(),
                what="the stale copy's dead letter",
            )
        assert dead_letter.status == DeadLetter.Status.STALE
        assert Order.objects.get(pk=order_id).status == "APPROVED"

    order = wait_for_terminal(order_id)
    assert order.status == "PROCESSED"
    assert history(order_id) == [
        ("", "PENDING"),
        ("PENDING", "APPROVED"),
        ("APPROVED", "PROCESSED"),
    ]
    assert charges_at_gateway(order_id) == 1


def test_replaying_a_stale_dead_letter_during_an_outage_is_refused_and_fails_nothing(
    system, buyer_api
):
    """The review's case: a replay whose publish fails used to fail the order again, here an
    APPROVED order whose billing is on its way."""
    with worker_paused(system, "billing"):
        order_id = post_order(buyer_api)
        wait_for_status(order_id, "APPROVED")
        with worker_paused(system, "fraud"):
            kill_a_copy(system, fraud_message_of(order_id), "fraud")
            stale = dead_letter_of(fraud_message_of(order_id).id)
        system.proxy.cut()  # the replay meets a broker that is away

        refused = run_deadletters_command(system, "replay", "--id", str(stale.pk))

        assert refused.returncode == 1
        assert "is APPROVED: it has passed fraud.screen_order" in refused.stderr
        stale.refresh_from_db()
        assert (stale.status, stale.replay_count) == (DeadLetter.Status.STALE, 0)
        assert Order.objects.get(pk=order_id).status == "APPROVED"
        system.proxy.restore()

    assert wait_for_terminal(order_id).status == "PROCESSED"
    assert charges_at_gateway(order_id) == 1


def run_deadletters_command(system, *args: str) -> subprocess.CompletedProcess:
    """`manage.py deadletters ...` as an operator runs it, reaching the broker like the web."""
    return subprocess.run(  # noqa: S603 - our own command
        python_argv("manage.py", "deadletters", *args),
        cwd=ROOT,
        env=process_env(system.db_url, via_proxy(system.broker_url, system.proxy)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_replays_from_the_admin_and_the_cli_at_once_during_an_outage_complete_the_order_once(
    system, buyer_api
):
    system.restart_web()  # the admin's log entries need this test's content type ids
    web_superuser("operator", "pw")
    fault = FakeGatewayFault.objects.create(remaining=1000)
    order_id = post_order(buyer_api)
    wait_for_status(order_id, "FAILED")
    dead_letter = dead_letter_of(billing_message_of(order_id).id)
    admin = AdminSession(system.base_url, "operator", "pw")
    fault.delete()

    system.proxy.cut()  # web, relay and the command line lose the broker
    results = {}
    replays = [
        threading.Thread(
            target=lambda: results.__setitem__(
                "admin",
                admin.post_form(
                    "/admin/messaging/deadletter/",
                    [("action", "replay_selected"), ("_selected_action", str(dead_letter.pk))],
                ),
            )
        ),
        threading.Thread(
            target=lambda: results.__setitem__(
                "cli", run_deadletters_command(system, "replay", "--id", str(dead_letter.pk))
            )
        ),
    ]
    for replay in replays:
        replay.start()
    for replay in replays:
        replay.join(60)

    assert results["admin"].status == 200
    assert "Replayed 1 dead letter(s)." in results["admin"].body
    assert results["cli"].returncode == 0, results["cli"].stderr
    dead_letter.refresh_from_db()
    assert (dead_letter.status, dead_letter.replay_count) == (DeadLetter.Status.REPLAYED, 2)
    waiting = OutboxMessage.objects.get(pk=dead_letter.message_id)
    assert waiting.published_at is None, "published through a broker that was away?"
    assert Order.objects.get(pk=order_id).status == "APPROVED"  # resumed, its message waits

    system.proxy.restore()  # the relay delivers the replay

    order = wait_for_terminal(order_id)
    assert order.status == "PROCESSED"
    assert history(order_id)[-3:] == [
        ("APPROVED", "FAILED"),
        ("FAILED", "APPROVED"),
        ("APPROVED", "PROCESSED"),
    ]
    assert charges_at_gateway(order_id) == 1
    assert uuid.UUID(dead_letter.message_id) == waiting.id
