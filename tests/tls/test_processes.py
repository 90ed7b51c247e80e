"""The processes over amqps, configured as in production by CELERY_BROKER_URL and
BROKER_SSL_CA_FILE alone: the release's setup_broker and a Celery worker."""

import os
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings

from messaging import selectors

pytestmark = pytest.mark.broker


def environment(url: str, ca_file) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BROKER_", "PROCESS_"))}
    return base | {"CELERY_BROKER_URL": url, "BROKER_SSL_CA_FILE": str(ca_file)}


def setup_broker(url: str, ca_file) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "setup_broker"],
        cwd=settings.BASE_DIR,
        env=environment(url, ca_file),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_release_declares_the_topology_over_verified_tls(tls_broker, authority):
    declared = setup_broker(tls_broker.tls_url(), authority / "ca.pem")
    refused = setup_broker(tls_broker.tls_url(), authority / "stranger.pem")

    assert declared.returncode == 0, declared.stderr
    assert "broker topology declared" in declared.stdout
    assert refused.returncode != 0
    assert "certificate verify failed" in refused.stderr


def test_a_worker_consumes_over_verified_tls(tls_broker, authority, settings):
    settings.BROKER_SSL_CA_FILE = str(authority / "ca.pem")
    url = tls_broker.tls_url()
    argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "fraud", "-c", "1",
            "--without-mingle", "--without-gossip", "-n", "tls@%h"]  # fmt: skip
    worker = subprocess.Popen(  # noqa: S603
        argv,
        cwd=settings.BASE_DIR,
        env=environment(url, authority / "ca.pem"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline, consumers = time.monotonic() + 60, None
        while time.monotonic() < deadline and worker.poll() is None:
            (fraud,) = selectors.queue_depths(names=["fraud"], url=url, timeout=5)
            if consumers := fraud.consumers:
                break
            time.sleep(0.5)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            _, errors = worker.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            _, errors = worker.communicate()

    assert consumers == 1, errors[-3000:]
