"""Publisher confirms on the real RabbitMQ: each message counts on its own, every wait ends.

Refusals are RabbitMQ's own: while `refusing_fraud` holds, a queue of length 0 with
`x-overflow: reject-publish` is bound to the fraud exchange, so the broker nacks every fraud
message (it still reaches the fraud queue, where no worker of this package consumes it).
Withheld confirms are a real resource alarm on a private node (tests/live/node.py).
"""

import time
import uuid

import pytest
from django.conf import settings
from kombu import Connection, Exchange, Queue

from messaging import broker as broker_module
from messaging import outbox
from messaging.models import OutboxMessage
from messaging.topology import declare_topology

from ..factories import OutboxMessageFactory
from ..live.node import celery_app_on, private_node

pytestmark = [pytest.mark.broker, pytest.mark.timeout(180)]

ACCEPTED = "billing.confirm_probe"  # routed to billing: confirmed
REFUSED = "fraud.confirm_probe"  # routed to fraud: nacked while refusing_fraud holds
PROBES = {ACCEPTED, REFUSED}
DEADLINE = 1.0  # BROKER_PUBLISH_TIMEOUT in these tests
SLACK = 1.0  # scheduling on a busy 2-core machine, on top of the deadline


def take_probes(url: str) -> list[str]:
    """Remove the probe messages from the work queues; return their task ids, with repeats."""
    taken = []
    with Connection(url, connect_timeout=5) as connection:
        declare_topology(connection)
        for name in ("fraud", "billing"):
            queue = Queue(name, channel=connection.default_channel, no_declare=True)
            others = []
            while (message := queue.get()) is not None:
                if message.headers.get("task") in PROBES:
                    taken.append(message.headers["id"])
                    message.ack()
                else:
                    others.append(message)
            for message in others:
                message.reject(requeue=True)
    return taken


@pytest.fixture
def real_broker(monkeypatch, settings):
    """The outbox publishes to RabbitMQ itself, not to the suite's recording fake."""
    settings.BROKER_PUBLISH_TIMEOUT = DEADLINE
    monkeypatch.setattr(outbox, "send_message", broker_module.send_message)
    monkeypatch.setattr(outbox, "send_messages", broker_module.send_messages)
    yield
    take_probes(settings.CELERY_BROKER_URL)


@pytest.fixture
def refusing_fraud(real_broker):
    """RabbitMQ nacks fraud messages: a full reject-publish queue shares their routing."""
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=5) as connection:
        declare_topology(connection)
        # Exclusive: gone with this connection, whatever happens to the test.
        Queue(
            f"refuse-{uuid.uuid4().hex[:8]}",
            exchange=Exchange("fraud", type="topic", durable=True),
            routing_key="fraud",
            exclusive=True,
            queue_arguments={"x-max-length": 0, "x-overflow": "reject-publish"},
        ).bind(connection.default_channel).declare()
        yield


def message(task_name: str) -> dict:
    return {
        "task_name": task_name,
        "message_id": uuid.uuid4(),
        "kwargs": {"order_id": "probe"},
        "headers": {},
    }


def send(task_name: str, message_id: uuid.UUID | None = None) -> uuid.UUID:
    message_id = message_id or uuid.uuid4()
    broker_module.send_message(
        task_name=task_name, message_id=message_id, kwargs={"order_id": "probe"}, headers={}
    )
    return message_id


# --- the confirm of each message -----------------------------------------------------------


@pytest.mark.usefixtures("real_broker")
def test_every_message_of_a_batch_the_broker_takes_is_confirmed():
    batch = [message(ACCEPTED) for _ in range(30)]

    confirms = broker_module.send_messages(batch)

    assert confirms.confirmed == {m["message_id"] for m in batch}
    assert confirms.failed == {}
    assert sorted(take_probes(settings.CELERY_BROKER_URL)) == sorted(
        str(m["message_id"]) for m in batch
    )


@pytest.mark.usefixtures("refusing_fraud")
def test_a_refused_message_is_reported_as_such_and_the_rest_of_its_batch_confirmed():
    batch = [message(name) for name in (ACCEPTED, REFUSED, ACCEPTED, ACCEPTED, REFUSED)]
    started = time.monotonic()

    confirms = broker_module.send_messages(batch)

    ids = [m["message_id"] for m in batch]
    assert confirms.confirmed == {ids[0], ids[2], ids[3]}
    assert confirms.failed == {ids[1]: broker_module.NACKED, ids[4]: broker_module.NACKED}
    # A nack settles its message: nothing waits for the deadline.
    assert time.monotonic() - started < DEADLINE / 2


@pytest.mark.usefixtures("refusing_fraud")
def test_a_refused_single_publish_raises_a_broker_error_and_its_row_stays_for_the_relay(db):
    with pytest.raises(broker_module.BROKER_ERRORS) as raised:
        send(REFUSED)
    assert isinstance(raised.value, broker_module.NotConfirmed)

    row = OutboxMessageFactory(task_name=REFUSED, kwargs={"order_id": "probe"})
    assert outbox.publish_committed(row) is False
    row.refresh_from_db()
    assert (row.published_at, row.attempts, row.last_error) == (None, 1, broker_module.NACKED)

    # The same pooled publisher is fine for the next message.
    accepted = send(ACCEPTED)
    assert str(accepted) in take_probes(settings.CELERY_BROKER_URL)


@pytest.mark.usefixtures("refusing_fraud")
def test_a_nack_raised_by_a_plain_confirming_publisher_is_a_broker_error():
    """What py-amqp raises on a nack (MessageNacked, no AMQPError) is caught as one."""
    url = settings.CELERY_BROKER_URL
    with Connection(url, connect_timeout=5, transport_options={"confirm_publish": True}) as c:
        producer = c.Producer()
        with pytest.raises(broker_module.BROKER_ERRORS):
            producer.publish(b"{}", exchange="fraud", routing_key="fraud", confirm_timeout=5)


@pytest.mark.usefixtures("refusing_fraud")
def test_the_relay_marks_published_exactly_the_confirmed_rows_and_sends_them_once(db):
    accepted = OutboxMessageFactory.create_batch(3, task_name=ACCEPTED, kwargs={"order_id": "p"})
    refused = OutboxMessageFactory(task_name=REFUSED, kwargs={"order_id": "p"})

    assert outbox.publish_pending() == 3
    assert outbox.publish_pending() == 0  # the next pass sends only the refused row again

    assert set(
        OutboxMessage.objects.filter(published_at__isnull=True).values_list("id", flat=True)
    ) == {refused.id}
    refused.refresh_from_db()
    assert (refused.attempts, refused.last_error) == (2, broker_module.NACKED)
    assert OutboxMessage.objects.filter(attempts=0, last_error="").count() == 3
    sent = take_probes(settings.CELERY_BROKER_URL)
    assert sorted(i for i in sent if i != str(refused.id)) == sorted(str(r.id) for r in accepted)


@pytest.mark.usefixtures("real_broker")
def test_send_message_publishes_a_task_whose_id_is_the_outbox_row_id_topology_first(
    monkeypatch,
):
    declared = []
    real_declare = broker_module.declare_topology
    monkeypatch.setattr(
        broker_module, "declare_topology", lambda c: (declared.append(c), real_declare(c))
    )
    monkeypatch.setattr(broker_module, "_topology_declared", False)

    first, second = send(ACCEPTED), send(ACCEPTED)

    assert len(declared) == 1  # the topology once per process, before its first publish
    assert take_probes(settings.CELERY_BROKER_URL) == [str(first), str(second)]


# --- a broker that withholds confirms: resource alarms on a private node -------------------


@pytest.fixture(scope="module")
def alarm_node():
    with private_node("confirms") as node:
        yield node


@pytest.fixture
def on_alarm_node(alarm_node, real_broker):
    with celery_app_on(alarm_node.url()):
        yield alarm_node
    alarm_node.clear_alarms()
    take_probes(alarm_node.url())


@pytest.mark.parametrize("alarm", ["memory_alarm", "disk_alarm"])
def test_under_an_alarm_a_publish_gives_up_at_the_deadline_and_the_next_one_after_works(
    on_alarm_node, alarm
):
    send(ACCEPTED)  # a pooled connection, open before the alarm, as in a running web process
    getattr(on_alarm_node, alarm)()

    for _ in range(2):  # and again on the connection that replaced the blocked one
        started = time.monotonic()
        with pytest.raises(broker_module.NotConfirmed, match="not confirmed within"):
            send(ACCEPTED)
        assert DEADLINE * 0.9 < time.monotonic() - started < DEADLINE + SLACK

    on_alarm_node.clear_alarms()
    started = time.monotonic()
    after = send(ACCEPTED)
    assert time.monotonic() - started < DEADLINE + SLACK
    assert str(after) in take_probes(on_alarm_node.url())


@pytest.mark.django_db
def test_under_an_alarm_the_relay_confirms_nothing_keeps_every_row_then_sends_them(
    on_alarm_node,
):
    rows = OutboxMessageFactory.create_batch(5, task_name=ACCEPTED, kwargs={"order_id": "p"})
    on_alarm_node.memory_alarm()
    started = time.monotonic()

    assert outbox.publish_pending() == 0

    assert time.monotonic() - started < DEADLINE + SLACK
    for row in rows:
        row.refresh_from_db()
        assert row.published_at is None
        assert row.attempts == 1
        assert "not confirmed within" in row.last_error
    on_alarm_node.clear_alarms()
    assert outbox.publish_pending() == 5
    assert {str(row.id) for row in rows} <= set(take_probes(on_alarm_node.url()))
