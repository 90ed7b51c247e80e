"""The Procfile, as a Heroku-style platform (or `honcho start`) would run it."""

import json
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.utils import timezone
from kombu.utils.url import parse_url
from rest_framework.authtoken.models import Token

from chaos.broker import wait_for_empty_work_queues
from chaos.http import ApiClient, wait_for_http
from chaos.processes import ROOT, ManagedProcess, venv_bin
from chaos.proxy import free_port
from chaos.receiver import Receiver
from fakegateway.models import FakeGatewayCharge
from messaging.broker_users import _ctl
from ordering.models import Order
from ordering.state_machine import TERMINAL_STATUSES

from ..factories import OrderFactory, UserFactory
from ..live.least_privilege import broker_users_made, database_role_env, role_env
from ..live.system import database_url, process_env
from ..live.wait import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

# (unit price, expected status) for one order of quantity 1
MIX = [("25.00", "PROCESSED"), ("7000.00", "PAYMENT_FAILED"), ("20000.00", "CANCELED_FRAUD")]


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if line.strip())


def procfile_line(name: str) -> str:
    assert name in procfile(), f"no {name} process in the Procfile"
    return procfile()[name].strip()


@pytest.fixture
def procfile_env(settings):
    env = process_env(database_url(connection.settings_dict), settings.CELERY_BROKER_URL)
    env["PATH"] = f"{venv_bin('')}:{env['PATH']}"  # the Procfile names python, celery, gunicorn
    return env


def test_the_release_phase_migrates_and_declares_the_broker_topology(procfile_env):
    result = subprocess.run(  # noqa: S602 - the Procfile's own line, as a platform runs it
        procfile_line("release"),
        shell=True,
        cwd=ROOT,
        env=procfile_env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "broker topology declared" in result.stdout
    assert "staying up" not in result.stdout  # a platform's release phase must end


def test_web_comes_first_so_honcho_gives_it_port():
    # honcho gives PORT to the first process type and PORT + 100 to the next, and so on.
    assert next(iter(procfile())) == "web"


def test_honcho_start_runs_the_pipeline_and_100_orders_finish_as_expected(procfile_env):
    assert set(procfile()) == {
        "web",
        "release",
        "worker",
        "webhooks",
        "relay",
        "webhooks_relay",
        "deadletters",
        "beat",
    }
    run_the_procfile(procfile_env)


def test_the_procfile_runs_with_a_broker_user_and_a_database_role_per_process(procfile_env):
    """Least privilege as a deployment sets it up: every process connects as its own broker
    user (BROKER_URL_<PROCESS>) and database role (DATABASE_URL_<PROCESS>, made and granted
    by the release), and the whole pipeline, webhooks included, still does its work."""
    with (
        broker_users_made(procfile_env["CELERY_BROKER_URL"]) as broker_urls,
        database_role_env(procfile_env["DATABASE_URL"]) as database_env,
    ):
        env = procfile_env | role_env(broker_urls) | database_env
        env["STUCK_ORDER_SWEEP_SECONDS"] = "1"  # beat sends, as its own user, every second
        seen = {}

        def connected() -> None:
            seen["database"] = database_users()
            seen["broker"] = broker_users_connected()

        output = run_the_procfile(env, while_up=connected)

    assert "permission denied" not in output.lower()
    assert "access_refused" not in output.lower()
    roles = {
        urlsplit(url).username: name.removeprefix("DATABASE_URL_").lower()
        for name, url in database_env.items()
    }
    assert {roles[user] for user in seen["database"] if user in roles} >= {
        "web",
        "worker",
        "webhooks",
        "relay",
    }
    users = {parse_url(url)["userid"]: role for role, url in broker_urls.items()}
    assert {users[user] for user in seen["broker"] if user in users} >= {
        "worker",
        "webhooks",
        "relay",
        "deadletters",
        "beat",
    }


def database_users() -> set[str]:
    """The users connected to the test database now."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = current_database()"
        )
        return {row[0] for row in cursor.fetchall()}


def broker_users_connected() -> set[str]:
    """The users connected to the broker's node now."""
    return set(_ctl(None, "list_connections", "user").split())


def run_the_procfile(env: dict[str, str], while_up: Callable[[], None] = lambda: None) -> str:
    """`honcho start` on `env`: 100 orders of MIX posted by 10 clients finish as expected and
    are charged once, and the client subscribed to webhooks is told each of its outcomes;
    `while_up()` then runs with every process still up. Returns honcho's output."""
    port = free_port()
    receiver = Receiver().start()  # one client's webhook endpoint, on loopback
    honcho = ManagedProcess(
        "honcho",
        [venv_bin("honcho"), "start"],  # every Procfile process, release included
        env | {"PORT": str(port), "WEBHOOK_ALLOW_LOOPBACK": "1"},
    ).start()
    try:
        honcho.wait_for_output(r"ready\.", timeout=60)
        honcho.wait_for_output("release done; staying up", timeout=60)
        wait_for_http(f"http://127.0.0.1:{port}/api/orders/")
        clients = [
            ApiClient(f"http://127.0.0.1:{port}", Token.objects.create(user=UserFactory()).key)
            for _ in range(10)
        ]
        subscribed = clients[0].post(
            "/api/webhooks/endpoints/",
            {"url": receiver.url, "event_types": ["order.processed", "order.payment_failed"]},
        )
        assert subscribed.status == 201, subscribed.body
        expected: dict[uuid.UUID, str] = {}
        started = time.monotonic()
        for n in range(100):
            price, status = MIX[n % len(MIX)]
            body = {"product_name": f"Item {n}", "quantity": 1, "unit_price": price}
            response = clients[n % len(clients)].post("/api/orders/", body)
            assert response.status == 201, response.body
            expected[uuid.UUID(response.body["id"])] = status

        wait_until(
            lambda: (
                Order.objects.filter(pk__in=expected, status__in=TERMINAL_STATUSES).count() == 100
            ),
            timeout=60,
            what="100 orders to finish",
        )
        elapsed = time.monotonic() - started

        actual = dict(Order.objects.filter(pk__in=expected).values_list("id", "status"))
        assert actual == expected
        charged = FakeGatewayCharge.objects.filter(outcome="CHARGED")
        assert charged.count() == sum(1 for s in expected.values() if s == "PROCESSED")
        assert charged.values("order_ref").distinct().count() == charged.count()
        assert {c.amount_minor for c in charged} == {2500}
        assert "succeeded" in honcho.output()  # the Procfile's own worker did the work
        assert "stopped (rc=" not in honcho.output()  # release ended nothing
        print(f"100 orders posted and finished in {elapsed:.1f}s")
        # The Procfile's webhooks worker told the subscribed client of each of its outcomes.
        outcomes = {
            order_id: status
            for n, (order_id, status) in enumerate(expected.items())
            if n % len(clients) == 0 and status != "CANCELED_FRAUD"
        }
        wait_until(lambda: len(receiver.taken()) == len(outcomes), what="the client's webhooks")
        told = {
            uuid.UUID(event["data"]["order"]["id"]): event["data"]["order"]["status"]
            for event in (json.loads(request.body) for request in receiver.taken())
        }
        assert told == outcomes
        wait_for_empty_work_queues(env["CELERY_BROKER_URL"])
        while_up()
    finally:
        honcho.stop()
        receiver.stop()
    return honcho.output()


def test_beat_sends_the_stuck_order_sweep_to_the_procfile_worker(procfile_env):
    """beat and worker as the Procfile runs them: the sweep reaches the worker, which names
    the order that has no way forward."""
    stuck = OrderFactory()
    Order.objects.filter(pk=stuck.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    env = procfile_env | {"STUCK_ORDER_SWEEP_SECONDS": "1", "STUCK_ORDER_MINUTES": "5"}
    processes = [
        ManagedProcess(name, ["sh", "-c", f"exec {procfile_line(name)}"], env)
        for name in ("worker", "beat")
    ]
    try:
        for process in processes:
            process.start()
        worker, beat = processes
        worker.wait_for_output(rf"orders with no way forward: count=1 .*{stuck.id}", timeout=60)
        assert "maintenance.sweep_stuck_orders" in beat.output()
    finally:
        for process in processes:
            process.stop()
