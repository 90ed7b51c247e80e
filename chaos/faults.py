"""The faults the harness injects, each a small function over the running system."""

import logging
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psycopg

from .processes import ManagedProcess
from .proxy import TcpProxy

logger = logging.getLogger("chaos")


def children_of(pid: int) -> list[int]:
    """Direct children of a process (a celery worker's pool processes)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(child) for child in children.read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


def kill_worker_child(worker: ManagedProcess, rng: random.Random) -> str:
    """SIGKILL one pool process of a worker, as the OOM killer would."""
    deadline = time.monotonic() + 30
    while not (children := children_of(worker.process.pid)) and time.monotonic() < deadline:
        time.sleep(0.2)  # a worker that was just restarted is still forking its pool
    if not children:
        return f"{worker.name}: no pool process to kill"
    victim = rng.choice(children)
    os.kill(victim, signal.SIGKILL)
    return f"SIGKILL pool process {victim} of {worker.name}"


def kill_worker(worker: ManagedProcess) -> str:
    """SIGKILL a worker with its pool, then start a new one, as a supervisor would."""
    pid = worker.process.pid
    os.killpg(pid, signal.SIGKILL)
    worker.process.wait(10)
    worker.start()
    return f"SIGKILL worker {worker.name} (pid {pid}) and all its children; restarted"


class BrokerControl:
    """Stops and starts RabbitMQ: the real server with rabbitmqctl, or a proxy cut."""

    def __init__(self, mode: str, proxy: TcpProxy | None = None) -> None:
        self.mode = mode
        self.proxy = proxy

    @staticmethod
    def rabbitmqctl_works() -> bool:
        if not shutil.which("rabbitmqctl"):
            return False
        try:
            result = subprocess.run(
                ["rabbitmqctl", "-q", "status"],  # noqa: S607 - the admin tool on PATH
                capture_output=True,
                timeout=30,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False
        return result.returncode == 0

    def restart(self, down_seconds: float) -> str:
        if self.mode == "rabbitmqctl":
            _run(["rabbitmqctl", "stop_app"])
            time.sleep(down_seconds)
            _run(["rabbitmqctl", "start_app"])
            _run(["rabbitmqctl", "await_startup"])
            return f"RabbitMQ stop_app, {down_seconds:.0f} s down, start_app"
        self.proxy.cut()
        time.sleep(down_seconds)
        self.proxy.restore()
        return f"broker connections cut at the proxy for {down_seconds:.0f} s"


def database_fault(*, admin_url: str, database: str, proxy: TcpProxy, down_seconds: float) -> str:
    """Terminate every connection to the run's database, then keep it unreachable a while."""
    with psycopg.connect(admin_url, autocommit=True) as connection:
        killed = connection.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchone()[0]
    proxy.cut()
    time.sleep(down_seconds)
    proxy.restore()
    return f"pg_terminate_backend on {killed} connection(s), then {down_seconds:.0f} s outage"


def _run(argv: list[str]) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=120)  # noqa: S603
