"""scripts/run.sh, the README's main command, on a machine with nothing but Python.

It runs from a copy of the project in a temporary directory, with no DATABASE_URL (so
SQLite) and kombu's filesystem broker, the mode run.sh picks when no RabbitMQ answers on
127.0.0.1:5672. The broker is named explicitly here because one does answer on this
machine, and the suite must not use its default virtual host.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.http import ApiClient, wait_for_http
from chaos.processes import ARTIFACTS, ManagedProcess
from chaos.proxy import free_port
from ordering.state_machine import TERMINAL_STATUSES

from ..live.checkout import bare_env, fresh_checkout
from ..live.wait import wait_until

pytestmark = pytest.mark.timeout(240)

# (unit price, expected status) for one order of quantity 1
MIX = [("25.00", "PROCESSED"), ("7000.00", "PAYMENT_FAILED"), ("20000.00", "CANCELED_FRAUD")]
# Read on the checkout's SQLite database: the amounts charged, and the dashboard's figures.
FIGURES = """
from dashboard import selectors
from fakegateway.models import FakeGatewayCharge
flow = selectors.order_flow().finished
charged = FakeGatewayCharge.objects.filter(outcome="CHARGED").values_list("amount_minor", flat=True)
print("charged", *charged, "finished", flow.finished, "p95", flow.p95 is not None)
"""


@pytest.fixture
def checkout(tmp_path) -> Path:
    return fresh_checkout(tmp_path)


def manage(checkout: Path, env: dict[str, str], *args: str) -> str:
    result = subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "manage.py", *args],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_run_sh_runs_the_pipeline_on_sqlite_and_a_filesystem_broker(checkout):
    port = free_port()
    env = bare_env(DEBUG="1", PORT=str(port), CELERY_BROKER_URL="filesystem://")
    run = ManagedProcess("run-sh", [str(checkout / "scripts" / "run.sh")], env, ARTIFACTS)
    run.start()
    try:
        run.wait_for_output(r"celery@\S+ ready\.", timeout=120)
        run.wait_for_output("dead-letter consumer ready", timeout=30)
        run.wait_for_output("release done", timeout=30)
        wait_for_http(f"http://127.0.0.1:{port}/healthz")
        output = run.output()
        assert "filesystem broker instead of RabbitMQ: no dead-letter queue, no delivery limit" in (
            output
        )
        assert "SQLite instead of PostgreSQL" in output

        readiness = ApiClient(f"http://127.0.0.1:{port}").get("/readyz")
        assert readiness.status == 200, readiness.body
        assert readiness.body["checks"] == {"database": "ok", "broker": "ok"}

        # What the README tells a newcomer to do: a login, then a token for the API.
        manage(
            checkout,
            env | {"DJANGO_SUPERUSER_PASSWORD": "newcomer-password"},
            "createsuperuser", "--noinput", "--username", "newcomer", "--email", "n@example.com",
        )  # fmt: skip
        token = re.search(r"token (\w+)", manage(checkout, env, "drf_create_token", "newcomer"))
        api = ApiClient(f"http://127.0.0.1:{port}", token.group(1))
        expected = {}
        for price, status in MIX:
            body = {"product_name": "Tea", "quantity": 1, "unit_price": price}
            response = api.post("/api/orders/", body)
            assert response.status == 201, response.body
            expected[response.body["id"]] = status

        def statuses() -> dict[str, str] | None:
            seen = {
                order_id: api.get(f"/api/orders/{order_id}/").body["status"]
                for order_id in expected
            }
            return seen if set(seen.values()) <= TERMINAL_STATUSES else None

        assert wait_until(statuses, timeout=60, what="the orders to finish") == expected
        # Money is exact on SQLite too, and the dashboard's percentiles (sqlite_dev) compute.
        totals = {api.get(f"/api/orders/{order_id}/").body["total"] for order_id in expected}
        assert totals == {price for price, _ in MIX}
        figures = manage(checkout, env, "shell", "--verbosity", "0", "-c", FIGURES).split()
        assert figures == ["charged", "2500", "finished", "3", "p95", "True"]
        assert (checkout / "db.sqlite3").exists()
        assert (checkout / "var" / "broker").is_dir()
    finally:
        run.stop()
    assert not run.running
