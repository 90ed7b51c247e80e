"""Start the real system for a test session: web (gunicorn), worker (celery), relay.

Web and relay reach the broker through a TcpProxy, so a test can take the broker away from
them (and bring it back) without touching the RabbitMQ other processes use.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from kombu.utils.url import parse_url

from chaos.broker import queue_depth, reset_topology
from chaos.http import wait_for_http
from chaos.processes import (
    ROOT,
    ManagedProcess,
    celery_worker_argv,
    gunicorn_argv,
    python_argv,
)
from chaos.proxy import TcpProxy, free_port
from messaging.topology import DEAD_LETTER_QUEUE, WORK_QUEUES


def database_url(settings_dict: dict) -> str:
    user = quote(settings_dict["USER"] or "")
    password = quote(settings_dict["PASSWORD"] or "")
    host = settings_dict["HOST"] or "127.0.0.1"
    port = settings_dict["PORT"] or 5432
    return f"postgres://{user}:{password}@{host}:{port}/{settings_dict['NAME']}"


def via_proxy(broker_url: str, proxy: TcpProxy) -> str:
    parts = parse_url(broker_url)
    vhost = quote(parts["virtual_host"] or "/", safe="")
    return f"amqp://{parts['userid']}:{parts['password']}@127.0.0.1:{proxy.port}/{vhost}"


def process_env(db_url: str, broker_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": db_url,
        "CELERY_BROKER_URL": broker_url,
        "SECRET_KEY": os.environ.get("SECRET_KEY", "orderflow-tests-only"),
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "INFO",
        # Short waits, so retries and outages play out within a test.
        "RETRY_BASE_SECONDS": "1",
        "RETRY_MAX_SECONDS": "2",
        "BROKER_CONNECTION_TIMEOUT": "0.5",
        "SECURE_SSL_REDIRECT": "0",  # plain HTTP on localhost, no TLS router in front
        "SESSION_COOKIE_SECURE": "0",  # so a browser keeps the admin's cookies over plain HTTP
        "CSRF_COOKIE_SECURE": "0",
        "RETRY_MAX_ATTEMPTS": "3",
        "RETRY_JITTER": "0",  # delays of 1 s then 2 s, so tests can see them grow
        **extra,
    }


@dataclass
class LiveSystem:
    db_url: str
    broker_url: str
    proxy: TcpProxy
    web: ManagedProcess
    worker: ManagedProcess
    relay: ManagedProcess
    deadletters: ManagedProcess
    base_url: str
    static_root: Path

    @classmethod
    def start(cls, *, db_url: str, broker_url: str, **env: str) -> "LiveSystem":
        """Start every process; `env` adds settings (BROKER_PUBLISH_TIMEOUT="1") to them all."""
        reset_topology(broker_url)
        static_root = collect_static(process_env(db_url, broker_url))
        proxy = TcpProxy(_host_port(broker_url)).start()
        proxied = via_proxy(broker_url, proxy)
        port = free_port()
        system = cls(
            db_url=db_url,
            broker_url=broker_url,
            proxy=proxy,
            worker=ManagedProcess(
                "worker",
                celery_worker_argv(hostname="itest@%h"),
                process_env(db_url, broker_url, **env),
            ),
            web=ManagedProcess(
                "web",
                gunicorn_argv(port=port, extra=("--access-logfile", "-")),
                process_env(db_url, proxied, STATIC_ROOT=str(static_root), **env),
            ),
            relay=ManagedProcess(
                "relay",
                python_argv("manage.py", "relay_outbox", "--interval", "0.2"),
                process_env(db_url, proxied, **env),
            ),
            deadletters=ManagedProcess(
                "deadletters",
                python_argv("manage.py", "consume_dead_letters"),
                process_env(db_url, broker_url, **env),
            ),
            base_url=f"http://127.0.0.1:{port}",
            static_root=static_root,
        )
        try:
            for process in (system.worker, system.web, system.relay, system.deadletters):
                process.start()
            system.worker.wait_for_output(r"ready\.", timeout=60)
            system.relay.wait_for_output("relay started")
            system.deadletters.wait_for_output("dead-letter consumer ready")
            wait_for_http(system.base_url + "/api/orders/")
        except BaseException:
            system.stop()
            raise
        return system

    @property
    def worker_name(self) -> str:
        return f"itest@{socket.gethostname()}"

    def wait_until_idle(self, timeout: float = 30) -> None:
        """Wait until nothing is unpublished, queued, reserved or running, twice in a row.

        Wiping the database under a task that is still running would deadlock PostgreSQL's
        TRUNCATE against the task's row locks.
        """
        from config.celery import app
        from messaging.models import OutboxMessage

        deadline = time.monotonic() + timeout
        quiet = 0
        while quiet < 2:
            inspector = app.control.inspect(destination=[self.worker_name], timeout=1)
            busy = {
                "unpublished": OutboxMessage.objects.filter(published_at__isnull=True).count(),
                **{
                    name: queue_depth(self.broker_url, name)
                    for name in (*WORK_QUEUES, DEAD_LETTER_QUEUE)
                },
                "active": sum(map(len, (inspector.active() or {}).values())),
                "reserved": sum(map(len, (inspector.reserved() or {}).values())),
            }
            quiet = 0 if any(busy.values()) else quiet + 1
            if time.monotonic() > deadline:
                raise AssertionError(f"the system did not settle in {timeout}s: {busy}")
            time.sleep(0.1)

    def restart_web(self) -> None:
        """A fresh gunicorn, for tests of the admin: each test's flush re-creates Django's
        content types under new ids, and a long-lived web worker keeps the old ones cached
        (an admin action's log entry then fails its foreign key). Production never flushes."""
        self.web.stop()
        self.web.start()
        wait_for_http(self.base_url + "/api/orders/")

    def stop(self) -> None:
        for process in (self.deadletters, self.relay, self.web, self.worker):
            process.stop()
        self.proxy.cut()
        shutil.rmtree(self.static_root, ignore_errors=True)


def collect_static(env: dict[str, str]) -> Path:
    """The release step that makes the admin's CSS and JS servable (whitenoise), into a temp dir."""
    static_root = Path(tempfile.mkdtemp(prefix="orderflow-static-"))
    subprocess.run(  # noqa: S603 - our own command
        python_argv("manage.py", "collectstatic", "--noinput", "--verbosity", "0"),
        cwd=ROOT,
        env={**env, "STATIC_ROOT": str(static_root)},
        check=True,
        timeout=120,
    )
    return static_root


def _host_port(broker_url: str) -> tuple[str, int]:
    parts = parse_url(broker_url)
    return parts["hostname"] or "127.0.0.1", int(parts["port"] or 5672)
