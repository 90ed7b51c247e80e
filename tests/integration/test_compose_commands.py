"""The commands docker-compose.yml adds beyond the Procfile, run here for real (no Docker
daemon: each runs as compose would run it inside the container)."""

import base64
import subprocess
import urllib.error
import urllib.request
import uuid

import pytest
import yaml
from django.db import connection

from chaos.http import wait_for_http
from chaos.processes import ROOT, ManagedProcess, celery_worker_argv, venv_bin
from chaos.proxy import free_port

from ..live.system import database_url, process_env

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]


def compose_service(name: str) -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"][name]


def as_the_container_runs_it(command: str) -> str:
    return command.replace("$$", "$")  # compose's escape for a literal $


@pytest.fixture
def env(settings):
    env = process_env(database_url(connection.settings_dict), settings.CELERY_BROKER_URL)
    env["PATH"] = f"{venv_bin('')}:{env['PATH']}"
    return env


def test_the_worker_liveness_check_passes_while_it_runs_and_fails_once_it_stopped(env):
    hostname = f"live-{uuid.uuid4().hex[:8]}"
    env = env | {"HOSTNAME": hostname}
    check = as_the_container_runs_it(compose_service("worker")["healthcheck"]["test"][1])
    # The worker's default node name, celery@<host name>, as in the container.
    argv = celery_worker_argv(hostname=f"celery@{hostname}", queues="fraud,billing")
    worker = ManagedProcess("liveness-worker", argv, env).start()

    def liveness() -> int:
        return subprocess.run(  # noqa: S603 - the compose file's own check
            ["/bin/sh", "-c", check], cwd=ROOT, env=env, capture_output=True, timeout=60
        ).returncode

    try:
        worker.wait_for_output(r"ready\.", timeout=60)
        assert liveness() == 0
    finally:
        worker.stop()
    assert liveness() != 0


def test_flower_refuses_to_start_without_basic_auth_and_asks_for_it_once_started(env):
    command = as_the_container_runs_it(compose_service("flower")["command"])
    refused = subprocess.run(  # noqa: S603 - the compose file's own command
        ["/bin/sh", "-c", command.removeprefix("sh -c ").strip("'")],
        cwd=ROOT,
        env=env | {"FLOWER_BASIC_AUTH": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1
    assert "set FLOWER_BASIC_AUTH" in refused.stderr

    port = free_port()
    flower = ManagedProcess(
        "flower",
        ["/bin/sh", "-c", command.removeprefix("sh -c ").strip("'").replace("5555", str(port))],
        env | {"FLOWER_BASIC_AUTH": "ops:s3cret"},
    ).start()
    try:
        url = f"http://127.0.0.1:{port}/workers"
        wait_for_http(url)
        with pytest.raises(urllib.error.HTTPError) as anonymous:
            urllib.request.urlopen(url, timeout=10)
        assert anonymous.value.code == 401
        login = base64.b64encode(b"ops:s3cret").decode()
        request = urllib.request.Request(url, headers={"Authorization": f"Basic {login}"})
        with urllib.request.urlopen(request, timeout=10) as page:  # noqa: S310
            assert page.status == 200
    finally:
        flower.stop()
