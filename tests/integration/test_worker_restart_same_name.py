"""A worker killed and restarted at once under the same node name, again and again.

Half-open: the killed worker's TCP connection is held open by a proxy, so the broker keeps
its exclusive remote-control queue until heartbeats give the connection up; the new worker
must wait that out instead of exiting. On a private node, whose vhost the test deletes.
"""

import socket

import pytest
from django.db import connection

from chaos.pidbox import restart_worker_same_name, workers_answering
from chaos.processes import ManagedProcess, celery_worker_argv
from chaos.proxy import TcpProxy
from config.celery import app
from ordering import services
from ordering.models import Order
from ordering.state_machine import OrderStatus

from ..factories import UserFactory
from ..live.node import celery_app_on, private_node
from ..live.system import database_url, process_env
from ..live.wait import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.timeout(420)]

VHOST = "restart-same-name"
HEARTBEAT = "4"  # seconds: the broker gives a silent connection up after two or three
NODE_NAME = f"restart@{socket.gethostname()}"


@pytest.fixture
def worker_behind_proxy(transactional_db):
    with private_node("restart") as node:
        node.ctl("add_vhost", VHOST)
        node.ctl("set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")
        proxy = TcpProxy(("127.0.0.1", node.node.port)).start()
        env = process_env(
            database_url(connection.settings_dict),
            f"amqp://guest:guest@127.0.0.1:{proxy.port}/{VHOST}",
            BROKER_HEARTBEAT=HEARTBEAT,
        )
        worker = ManagedProcess(
            "worker-restart-same-name", celery_worker_argv(hostname="restart@%h"), env
        )
        try:
            with celery_app_on(node.url(VHOST)):
                worker.start().wait_for_output(r"ready\.", timeout=60)
                yield node, proxy, worker
        finally:
            worker.stop()
            proxy.cut()


def test_a_worker_restarted_under_its_name_answers_and_works_closed_or_half_open(
    worker_behind_proxy, settings
):
    node, proxy, worker = worker_behind_proxy
    for held in (None, None, proxy, proxy, proxy):
        restart_worker_same_name(worker, held)
        # Half-open, the old connection lasts two or three heartbeats, then the worker's
        # reconnect backs off: a minute is ample, and far less than a crash loop's wait.
        assert workers_answering(app, [NODE_NAME], timeout=60) == [], worker.output()[-3000:]
        assert worker.running, "the restarted worker exited"

    reply = {"destination": [NODE_NAME], "reply": True, "timeout": 5}
    assert app.control.cancel_consumer("fraud", **reply) == [
        {NODE_NAME: {"ok": "no longer consuming from fraud"}}
    ]
    assert app.control.add_consumer("fraud", **reply) == [{NODE_NAME: {"ok": "add consumer fraud"}}]
    settings.OUTBOX_PUBLISH_ON_COMMIT = True  # published to the private node, as in production
    order = services.create_order(
        buyer=UserFactory(),
        product_name="Teapot",
        quantity=1,
        unit_price_minor=2000,
        currency="EUR",
    ).order
    wait_until(
        lambda: Order.objects.get(pk=order.pk).status == OrderStatus.PROCESSED,
        timeout=60,
        what="the order to be processed by the restarted worker",
    )

    node.ctl("delete_vhost", VHOST, timeout=30)  # raises on a hang
