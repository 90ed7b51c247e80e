"""Publishing to a broker URL that lists several nodes (kombu failover), on the real RabbitMQ.

The "nodes" are TCP proxies in front of the suite's broker, so a test can take one away
(refused connections, open ones dropped) as a stopped cluster node would.
"""

import uuid

import pytest
from django.conf import settings
from kombu import Connection, Queue, pools

from chaos.proxy import TcpProxy
from config.celery import app
from messaging import broker as broker_module
from messaging import outbox
from messaging.models import OutboxMessage

from ..factories import OutboxMessageFactory
from ..live.system import _host_port, via_proxy

pytestmark = pytest.mark.broker

PROBE_TASK = "fraud.failover_probe"  # routed to the fraud queue; no worker runs in this package


def _reset_app_pools() -> None:
    """Make the Celery app build its connections from the broker URL again."""
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def nodes(monkeypatch):
    """Two proxies to the real broker, and the Celery app pointed at both: 'a;b'."""
    single = settings.CELERY_BROKER_URL
    proxies = [TcpProxy(_host_port(single)).start() for _ in range(2)]
    _reset_app_pools()
    failover = ";".join(via_proxy(single, proxy) for proxy in proxies)
    # Celery reads CELERY_BROKER_URL from the environment before its configuration.
    monkeypatch.setenv("CELERY_BROKER_URL", failover)
    app.conf.broker_url = failover
    # The real publishers, not the suite's recording fake.
    monkeypatch.setattr(outbox, "send_message", broker_module.send_message)
    monkeypatch.setattr(outbox, "send_messages", broker_module.send_messages)
    try:
        yield proxies
    finally:
        _reset_app_pools()
        app.conf.broker_url = single
        monkeypatch.setenv("CELERY_BROKER_URL", single)
        for proxy in proxies:
            proxy.cut()
        _take_probes()


def _take_probes() -> set[str]:
    """Remove the probe messages from the fraud queue; return their task ids."""
    taken, others = set(), []
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=5) as connection:
        queue = Queue("fraud", channel=connection.default_channel, no_declare=True)
        while (message := queue.get()) is not None:
            if message.headers.get("task") == PROBE_TASK:
                taken.add(message.headers["id"])
                message.ack()
            else:
                others.append(message)
        for message in others:
            message.reject(requeue=True)
    return taken


def _send(message_id: uuid.UUID) -> None:
    broker_module.send_message(
        task_name=PROBE_TASK, message_id=message_id, kwargs={"order_id": "probe"}, headers={}
    )


def test_broker_nodes_splits_a_failover_url():
    assert broker_module.broker_nodes("amqp://a:1//; amqp://b:2//;") == [
        "amqp://a:1//",
        "amqp://b:2//",
    ]
    assert broker_module.broker_nodes("amqp://a:1//") == ["amqp://a:1//"]


def test_every_process_reads_the_whole_failover_list_from_the_setting(nodes):
    connection = app.connection_for_write()
    assert connection.alt == broker_module.broker_nodes(app.conf.broker_url)
    assert len(connection.alt) == 2
    assert broker_module.failover_retries() == 1


def test_a_publish_goes_to_the_next_node_when_the_first_is_down(nodes):
    first, _ = nodes
    first.cut()
    message_id = uuid.uuid4()

    _send(message_id)

    assert _take_probes() == {str(message_id)}


def test_a_node_lost_after_connecting_fails_the_next_publish_over_to_another_node(nodes):
    first, _ = nodes
    before, after = uuid.uuid4(), uuid.uuid4()
    _send(before)  # connects through the first node and keeps the connection in the pool

    first.cut()  # drops the pooled connection, as a stopping node closes its clients'
    _send(after)

    assert _take_probes() == {str(before), str(after)}


@pytest.mark.django_db
def test_an_outbox_row_stays_unpublished_until_a_node_confirms_it(nodes):
    for proxy in nodes:
        proxy.cut()
    message = OutboxMessageFactory(task_name=PROBE_TASK, kwargs={"order_id": "probe"})

    assert outbox.publish_committed(message) is False
    message.refresh_from_db()
    assert message.published_at is None
    assert message.attempts == 1

    nodes[1].restore()  # only the second node comes back
    assert outbox.publish_pending() == 1

    assert OutboxMessage.objects.get(pk=message.pk).published_at is not None
    assert _take_probes() == {str(message.id)}


@pytest.mark.django_db
def test_the_relay_reaches_the_last_node_when_the_others_are_down(nodes):
    nodes[0].cut()
    messages = [
        OutboxMessageFactory(task_name=PROBE_TASK, kwargs={"order_id": "probe"}) for _ in range(3)
    ]

    assert outbox.publish_pending() == 3

    assert _take_probes() == {str(message.id) for message in messages}
