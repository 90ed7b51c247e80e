"""A worker killed and restarted at once under the same node name, and who answers ping.

A node's remote-control (pidbox) queue, `<name>.celery.pidbox`, is exclusive to the
connection that declared it. When a worker dies without its TCP connection closing (its host
lost, a partition), the broker keeps that connection, and the queue, until heartbeats give it
up; a worker restarted under the same name meanwhile finds the queue locked.
"""

import os
import signal
import time

from celery import Celery
from kombu.exceptions import OperationalError

from .processes import ManagedProcess
from .proxy import TcpProxy


def restart_worker_same_name(worker: ManagedProcess, proxy: TcpProxy | None = None) -> str:
    """SIGKILL a worker's process group and start it again at once under the same name.

    With `proxy` (the one the worker reaches the broker through), its connections are held
    half-open first, so the broker only learns of the death by missed heartbeats.
    """
    if proxy is not None:
        proxy.hold()
    pid = worker.process.pid
    os.killpg(pid, signal.SIGKILL)
    worker.process.wait(10)
    worker.start()
    how = "its connection held half-open" if proxy is not None else "its connection closed"
    return f"SIGKILL worker {worker.name} (pid {pid}), {how}; restarted under the same name"


def workers_answering(app: Celery, hostnames: list[str], timeout: float) -> list[str]:
    """The node names among `hostnames` that do NOT answer ping within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    missing = set(hostnames)
    while missing and (left := deadline - time.monotonic()) > 0:
        # A control message can be lost to a consumer that is no longer there: ask again, on
        # a connection of its own (a pooled one may have died in a broker restart).
        try:
            with app.connection_for_write() as connection:
                replies = app.control.ping(
                    destination=sorted(missing), timeout=min(1.0, left), connection=connection
                )
        except (OSError, OperationalError):
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            continue
        for reply in replies:
            missing -= reply.keys()
    return sorted(missing)
