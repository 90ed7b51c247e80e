"""The real processes, each connected as its role's own broker user, doing their jobs.

Web, relay, worker and dead-letter consumer run as LiveSystem starts them, but with every
BROKER_URL_<ROLE> set: each process picks its URL by the command it runs, and none of them
may declare anything, so the topology is the release's (`manage.py setup_broker`, run as the
release's user).
"""

import tempfile
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from kombu.utils.url import parse_url
from rest_framework.authtoken.models import Token

from billing.models import Charge
from chaos.broker import connect, publish_raw, queue_depth, wait_for_empty_work_queues
from chaos.http import ApiClient
from chaos.processes import ManagedProcess, celery_worker_argv, venv_bin
from fakegateway.models import FakeGatewayFault
from messaging.broker_users import _ctl
from messaging.models import DeadLetter
from ordering.models import Order
from ordering.state_machine import TERMINAL_STATUSES

from ..factories import UserFactory
from ..live.least_privilege import release, role_env
from ..live.system import LiveSystem, database_url, process_env
from ..live.wait import wait_until

pytestmark = [pytest.mark.timeout(240)]

REFUSED = "ACCESS_REFUSED"


@pytest.fixture(scope="module")
def per_role(broker_users, django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        db_url = database_url(connection.settings_dict)
    admin_url = settings.CELERY_BROKER_URL
    env = role_env(broker_users)
    system = LiveSystem.start(db_url=db_url, broker_url=admin_url, **env)
    extra = []
    try:
        release(broker_users)  # LiveSystem.start recreated the work queues: bind them again
        extra.append(
            ManagedProcess(
                "webhooks-per-role",
                celery_worker_argv(hostname="whrole@%h", queues="webhooks"),
                process_env(db_url, admin_url, **env),
            ).start()
        )
        extra[-1].wait_for_output(r"ready\.", timeout=60)
        yield system, extra[0], db_url, env
    finally:
        for process in extra:
            process.stop()
        system.stop()


@pytest.fixture
def system(per_role, transactional_db):
    live, *_ = per_role
    yield per_role
    live.wait_until_idle()
    wait_for_empty_work_queues(live.broker_url)


def logs(*processes) -> str:
    return "\n".join(process.output() for process in processes)


def terminal(order_id: uuid.UUID) -> Order:
    return wait_until(
        lambda: Order.objects.filter(pk=order_id, status__in=TERMINAL_STATUSES).first(),
        timeout=60,
        what=f"order {order_id} to finish",
    )


def test_an_order_flows_end_to_end_with_a_user_per_role(system):
    live, webhooks, _, env = system
    api = ApiClient(live.base_url, Token.objects.create(user=UserFactory()).key)
    FakeGatewayFault.objects.create(remaining=1)  # one retry, through delayed delivery

    response = api.post("/api/orders/", {"product_name": "Tea", "quantity": 1, "unit_price": "3"})
    assert response.status == 201, response.body
    order = terminal(uuid.UUID(response.body["id"]))

    assert order.status == "PROCESSED"
    # The retry waited in celery_delayed_* (the release's) and came back.
    assert Charge.objects.get(order=order).attempts == 2
    assert api.get("/readyz").status == 200  # the web user connects to the broker
    everyone = (live.web, live.relay, live.worker, live.deadletters, webhooks)
    assert REFUSED not in logs(*everyone)
    assert "Failed to setup delayed delivery" not in live.worker.output()
    users = {role: parse_url(url)["userid"] for role, url in env.items()}
    vhost = parse_url(live.broker_url)["virtual_host"]
    assert connected_users(vhost) >= {
        users[f"BROKER_URL_{role}"] for role in ("RELAY", "WORKER", "WEBHOOKS", "DEADLETTERS")
    }


def test_dead_letters_of_each_worker_reach_the_dead_letter_consumer(system):
    live, webhooks, *_ = system

    for queue in ("fraud", "webhooks"):  # bodies that differ: a dead letter's id is their hash
        body = b"\x80not json from " + queue.encode()
        publish_raw(live.broker_url, queue=queue, body=body, content_type="application/json")

    recorded = wait_until(
        lambda: set(DeadLetter.objects.values_list("queue", flat=True)) >= {"fraud", "webhooks"},
        timeout=30,
        what="both dead letters to be recorded",
    )
    assert recorded
    assert REFUSED not in logs(live.worker, live.deadletters, webhooks)


def test_beat_sends_its_schedule_as_its_own_user(system):
    live, _, db_url, env = system
    schedule = Path(tempfile.mkdtemp(prefix="orderflow-beat-")) / "schedule"
    beat = ManagedProcess(
        "beat-per-role",
        [venv_bin("celery"), "-A", "config", "beat", "--schedule", str(schedule)],
        process_env(db_url, live.broker_url, STUCK_ORDER_SWEEP_SECONDS="1", **env),
    ).start()
    try:
        beat.wait_for_output("Sending due task sweep-stuck-orders", timeout=60)
        wait_until(
            lambda: queue_depth(live.broker_url, "maintenance") > 0,
            timeout=20,
            what="beat's message in the maintenance queue",
        )
    finally:
        beat.stop()
        with connect(live.broker_url) as admin:
            admin.default_channel.queue_purge("maintenance")
    assert REFUSED not in beat.output()


def connected_users(vhost: str) -> set[str]:
    listing = _ctl(None, "list_connections", "user", "vhost")
    return {user for user, on in (line.split("\t") for line in listing.splitlines()) if on == vhost}
