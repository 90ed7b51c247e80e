"""The deploy as a Heroku-style platform really runs it.

A clean build directory (the repository's files only), the runtime `.python-version` names,
`pip install -r requirements.txt` into a fresh virtualenv, `collectstatic`, the release phase,
then every Procfile process with only what the platform gives it (PORT, DATABASE_URL,
CLOUDAMQP_URL and the app's config vars). While orders flow, each process is cycled the way a
dyno is: SIGTERM to the whole dyno, SIGKILL if it is still there 30 s later, then a new one.

A package of its own: tests/integration's live system, whose worker shares the test database
and the run's vhost, would take some of these orders.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token

from chaos.broker import wait_for_empty_work_queues
from chaos.http import ApiClient, wait_for_http
from chaos.processes import ROOT, ManagedProcess
from chaos.proxy import free_port
from fakegateway.models import FakeGatewayCharge
from ordering.models import Order
from ordering.selectors import orders_without_a_way_forward
from ordering.state_machine import TERMINAL_STATUSES

from ..factories import UserFactory
from ..integration.test_procfile import procfile
from ..live.system import database_url
from ..live.wait import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]

GRACE_SECONDS = 30  # Heroku's: SIGTERM, then SIGKILL what is left 30 s later
DYNOS = ("web", "worker", "webhooks", "relay", "webhooks_relay", "deadletters", "beat")


def test_the_runtime_and_the_manifest_say_what_the_platform_needs():
    runtime = (ROOT / ".python-version").read_text().strip()
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == runtime
    assert f"FROM python:{runtime}-" in (ROOT / "Dockerfile").read_text()

    manifest = json.loads((ROOT / "app.json").read_text())
    assert set(manifest["formation"]) == set(procfile()) - {"release"}
    assert manifest["formation"]["beat"]["quantity"] == 1  # each beat sends the whole schedule
    assert {addon["as"] for addon in manifest["addons"]} == {"DATABASE", "CLOUDAMQP"}
    assert manifest["env"]["SECRET_KEY"]["generator"] == "secret"


def build_directory(target: Path) -> Path:
    """What a platform builds from: the repository's files, nothing the checkout made."""
    listed = subprocess.run(
        # git from PATH, as everywhere the suite runs
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (entry.decode() for entry in listed)):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def run(argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> str:
    result = subprocess.run(  # noqa: S603 - our own build steps
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{argv}: {result.stdout[-2000:]}{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture
def slug(tmp_path_factory):
    """The built app: its directory, with requirements.txt installed and static files
    collected, as the Python buildpack leaves it."""
    app = build_directory(tmp_path_factory.mktemp("build"))
    venv = app / ".heroku-venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=app, env=dict(os.environ), timeout=120)
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    run(
        ["pip", "install", "--quiet", "--disable-pip-version-check", "-r", "requirements.txt"],
        cwd=app,
        env=env,
        timeout=600,
    )
    # The buildpack runs collectstatic with no config vars set but a dummy key.
    run(
        ["python", "manage.py", "collectstatic", "--noinput"],
        cwd=app,
        env={**env, "SECRET_KEY": "build-only", "DEBUG": "0"},
        timeout=120,
    )
    return app, env


@pytest.fixture
def dyno_env(slug, settings):
    _, build_env = slug
    env = {
        name: value
        for name, value in build_env.items()
        if not name.startswith(("CELERY_", "DATABASE_", "DJANGO_"))
    }
    return env | {
        "DATABASE_URL": database_url(connection.settings_dict),
        "CLOUDAMQP_URL": settings.CELERY_BROKER_URL,  # what the add-on sets
        "SECRET_KEY": "platform-test-only",
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",  # no TLS router in front here
        "WEB_CONCURRENCY": "2",
        "WORKER_CONCURRENCY": "2",
        "RETRY_BASE_SECONDS": "1",
        "RETRY_MAX_SECONDS": "2",
        "FRAUD_MAX_ORDERS_PER_HOUR": "100000",  # a few customers placing many orders
    }


class Dyno:
    """One Procfile process as a dyno: its own process group, which SIGTERM reaches whole."""

    def __init__(self, name: str, app: Path, env: dict[str, str]) -> None:
        self.name, self.app, self.env = name, app, env
        self.process: ManagedProcess | None = None

    def start(self) -> "Dyno":
        line = procfile()[self.name].strip()
        self.process = ManagedProcess(
            f"platform-{self.name}", ["sh", "-c", f"exec {line}"], self.env, cwd=self.app
        ).start()
        return self

    def cycle(self) -> float:
        """SIGTERM, SIGKILL after the grace period; how long it took to stop."""
        popen = self.process.process
        started = time.monotonic()
        os.killpg(popen.pid, signal.SIGTERM)
        try:
            returncode = popen.wait(GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(popen.pid, signal.SIGKILL)
            popen.wait(5)
            raise AssertionError(f"{self.name} ignored SIGTERM for {GRACE_SECONDS}s") from None
        took = time.monotonic() - started
        assert returncode == 0, f"{self.name} exited {returncode}:\n{self.process.output()[-3000:]}"
        self.process.stop()
        return took


class Customers(threading.Thread):
    """API clients placing orders until told to stop, each with an Idempotency-Key retried
    until it is answered, as a client does when a request fails (a web dyno restarting)."""

    def __init__(self, base_url: str, tokens: list[str]) -> None:
        super().__init__(daemon=True)
        self.clients = [ApiClient(base_url, token) for token in tokens]
        self.accepted: set[uuid.UUID] = set()
        self.stopping = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stopping.is_set():
            client, key = self.clients[n % len(self.clients)], str(uuid.uuid4())
            body = {"product_name": f"Dyno order {n}", "quantity": 1, "unit_price": "25.00"}
            while True:
                try:
                    response = client.post("/api/orders/", body, {"Idempotency-Key": key})
                except OSError:  # refused or reset: the web dyno is restarting
                    time.sleep(0.2)
                    continue
                if response.status in (200, 201):
                    self.accepted.add(uuid.UUID(response.body["id"]))
                    break
                assert response.status >= 500, response.body
                time.sleep(0.2)
            n += 1
            time.sleep(0.2)


def test_every_dyno_stops_cleanly_when_cycled_and_no_order_is_lost_or_charged_twice(slug, dyno_env):
    app, _ = slug
    release = procfile()["release"].strip()
    run(["sh", "-c", release], cwd=app, env=dyno_env, timeout=180)

    port = free_port()
    env = dyno_env | {"PORT": str(port)}
    dynos = {name: Dyno(name, app, env).start() for name in DYNOS}
    base_url = f"http://127.0.0.1:{port}"
    customers = Customers(
        base_url, [Token.objects.create(user=UserFactory()).key for _ in range(4)]
    )
    try:
        wait_for_http(f"{base_url}/readyz")
        customers.start()
        wait_until(lambda: len(customers.accepted) >= 10, timeout=60, what="first orders")
        stop_times = {}
        for name, dyno in dynos.items():
            stop_times[name] = dyno.cycle()
            dyno.start()
            if name == "web":
                wait_for_http(f"{base_url}/readyz")
            time.sleep(3)  # orders keep coming while the new dyno starts
        customers.stopping.set()
        customers.join(timeout=60)

        accepted = customers.accepted
        wait_until(
            lambda: (
                Order.objects.filter(pk__in=accepted, status__in=TERMINAL_STATUSES).count()
                == len(accepted)
            ),
            timeout=120,
            what=f"{len(accepted)} orders to finish",
        )
        outcomes = Counter(Order.objects.filter(pk__in=accepted).values_list("status", flat=True))
        assert outcomes == {"PROCESSED": len(accepted)}
        charged = FakeGatewayCharge.objects.filter(outcome="CHARGED")
        assert charged.count() == len(accepted)
        assert charged.values("order_ref").distinct().count() == len(accepted)
        wait_for_empty_work_queues(dyno_env["CLOUDAMQP_URL"])
        assert not orders_without_a_way_forward().exists()
        print(f"{len(accepted)} orders; seconds to stop after SIGTERM: {stop_times}")
        assert all(took < GRACE_SECONDS for took in stop_times.values())
    finally:
        customers.stopping.set()
        for dyno in dynos.values():
            if dyno.process is not None:
                dyno.process.stop()
