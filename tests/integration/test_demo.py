"""`manage.py demo` against the live system: every outcome, and a clear word without a worker."""

import subprocess
import sys
from collections import Counter

import pytest
from django.contrib.auth import get_user_model

from chaos.processes import ROOT
from fakegateway.models import FakeGatewayFault
from messaging import deadletters
from messaging.models import DeadLetter
from ordering.models import Order

from ..factories import UserFactory
from ..live.system import process_env
from ..live.wait import wait_until

pytestmark = pytest.mark.timeout(240)


def run_demo(system, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "manage.py", "demo", *args],
        cwd=ROOT,
        env=process_env(system.db_url, system.broker_url),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_demo_ends_orders_in_every_outcome(system):
    result = run_demo(system, "--orders", "12", "--timeout", "150", "--seed", "7")

    assert result.returncode == 0, result.stdout + result.stderr
    orders = Order.objects.filter(buyer__username__startswith="demo")
    assert Counter(orders.values_list("status", flat=True)) == {
        "PROCESSED": 6,
        "PAYMENT_FAILED": 2,
        "CANCELED_FRAUD": 2,
        "CANCELED": 1,
        "FAILED": 1,
    }
    assert "ended otherwise" not in result.stdout
    assert "FAILED orders wait for an operator" in result.stdout
    assert get_user_model().objects.filter(username="demo").exists()

    failed = orders.get(status="FAILED")
    assert failed.failed_from == "APPROVED"
    dead_letter = DeadLetter.objects.get(subject_id=failed.id)
    assert dead_letter.reason == "delivery_limit"
    assert not FakeGatewayFault.objects.filter(remaining__gt=0).exists()  # its fault is spent
    deadletters.replay(dead_letter_id=dead_letter.pk, actor=UserFactory(is_superuser=True))
    wait_until(
        lambda: Order.objects.get(pk=failed.pk).status == "PROCESSED",
        timeout=30,
        what="the replayed order to be processed",
    )


def test_the_demo_says_so_when_no_worker_consumes(system):
    system.worker.stop()
    try:
        result = run_demo(system, "--orders", "3", timeout=60)
    finally:
        system.worker.start()
        system.worker.wait_for_output(r"ready\.", timeout=60)

    assert result.returncode != 0
    assert "No worker is consuming fraud and billing" in result.stderr
    assert not Order.objects.exists()  # nothing placed to wait in the queues
