"""What every benchmark run shares: a fresh database, the processes, statistics and reports."""

import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
from amqp.exceptions import NotFound
from tqdm import tqdm

from chaos.processes import (
    ROOT,
    ManagedProcess,
    celery_worker_argv,
    gunicorn_argv,
    python_argv,
    venv_bin,
)
from chaos.proxy import free_port
from chaos.run import create_database, database_urls

RESULTS_DIR = ROOT / "docs" / "benchmarks"
LOG_DIR = ROOT / "test-artifacts" / "bench"


def setup_django(database_name: str) -> str:
    """Create a fresh database for the run, point Django at it, migrate; returns its URL."""
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/orderflow")
    admin_url, _, _ = database_urls(base, 0)
    run_url = admin_url.rsplit("/", 1)[0] + f"/{database_name}"
    create_database(admin_url, database_name)
    os.environ["DATABASE_URL"] = run_url
    os.environ.setdefault("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "orderflow-bench-not-a-secret")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return run_url


def process_env(**overrides: str) -> dict[str, str]:
    """The environment of a benchmarked process: production-like, logs at WARNING."""
    return {
        **os.environ,
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "SECURE_SSL_REDIRECT": "0",  # plain HTTP on localhost
        # Each load client is one buyer sending far more than a person could; what the
        # throttle costs is `python -m bench throttle`'s question.
        "API_THROTTLE_USER_RATE": "off",
        **overrides,
    }


def celery_worker(
    name: str,
    queues: str,
    concurrency: int,
    env: dict[str, str],
    app: str = "config",
    pool: str = "prefork",
) -> ManagedProcess:
    argv = celery_worker_argv(
        hostname=f"{name}@%h",
        queues=queues,
        concurrency=concurrency,
        loglevel="WARNING",
        app=app,
        pool=pool,
    )
    return ManagedProcess(name, argv, env, LOG_DIR)


def gunicorn(env: dict[str, str], workers: int = 2) -> tuple[ManagedProcess, str]:
    port = free_port()
    web = ManagedProcess("web", gunicorn_argv(port=port, workers=workers), env, LOG_DIR)
    return web, f"http://127.0.0.1:{port}"


def wait_ready(process: ManagedProcess, pattern: str, timeout: float = 90) -> None:
    process.wait_for_output(pattern, timeout=timeout)


def wait_for_consumers(queues: str, timeout: float = 90) -> None:
    """Wait until a worker consumes every queue named (workers log at WARNING: no 'ready').

    On a fresh broker a queue exists only once its worker has declared it: until then it
    counts as having no consumer.
    """
    from chaos.broker import connect

    deadline = time.monotonic() + timeout
    with connect(os.environ["CELERY_BROKER_URL"]) as connection:
        while not all(_consumers(connection, queue) for queue in queues.split(",")):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no consumer on {queues} after {timeout}s")
            time.sleep(0.2)


def _consumers(connection, queue: str) -> int:
    """The consumers of `queue`, 0 when it is not declared yet. A channel per question: the
    broker closes the one a passive declare of a missing queue was asked on."""
    with connection.channel() as channel:
        try:
            return channel.queue_declare(queue=queue, passive=True)[2]
        except NotFound:
            return 0


ORDERS_PER_BUYER = 15  # under FRAUD_MAX_ORDERS_PER_HOUR: every order takes the full path


def make_buyers(*, orders: int, prefix: str) -> list:
    """Enough buyers for `orders` orders that the hourly fraud rule never fires."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    return [users.create_user(f"{prefix}{n}") for n in range(-(-orders // ORDERS_PER_BUYER))]


def paced(count: int, rate: float | None) -> Iterator[int]:
    """0..count-1, the n-th at n / rate seconds from the start (at once without a rate)."""
    started = time.monotonic()
    for n in range(count):
        if rate:
            time.sleep(max(0.0, started + n / rate - time.monotonic()))
        yield n


def create_orders(*, buyers: list, orders: int, label: str, rate: float | None = None) -> list:
    """Orders through the service layer, `rate` a second or as fast as they go; their ids."""
    from ordering.services import create_order

    return [
        create_order(
            buyer=buyers[n % len(buyers)],
            product_name=f"{label} {n}",
            quantity=1,
            unit_price_minor=2500,
            currency="EUR",
        ).order.id
        for n in paced(orders, rate)
    ]


@contextlib.contextmanager
def flame_graphs(processes: list[ManagedProcess], directory: Path | None) -> Iterator[None]:
    """With a `directory`: py-spy samples each process (and its children) while the block
    runs, then writes <directory>/<process name>.svg. Without one, nothing."""
    if directory is None:
        yield
        return
    directory.mkdir(parents=True, exist_ok=True)
    spies = [
        subprocess.Popen(  # noqa: S603 - our own command
            [
                venv_bin("py-spy"),
                "record",
                "--pid",
                str(process.process.pid),
                "--subprocesses",
                "--nonblocking",
                "--rate",
                "200",
                "--output",
                str(directory / f"{process.name}.svg"),
                "--format",
                os.environ.get("PYSPY_FORMAT", "flamegraph"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for process in processes
    ]
    time.sleep(1)  # py-spy attaches
    try:
        yield
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes its graph on SIGINT
        for spy in spies:
            spy.wait(timeout=60)


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p95, p99 of the values (same unit), 0 when there are none."""
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": round(cuts[49], 4), "p95": round(cuts[94], 4), "p99": round(cuts[98], 4)}


def tree_rss(pid: int) -> int:
    """Resident memory of a process and its children, in bytes."""
    try:
        process = psutil.Process(pid)
        members = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for member in members:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += member.memory_info().rss
    return total


def wait_until_count(count: Callable[[], int], total: int, desc: str, timeout: float) -> float:
    """Poll count() with a progress bar until it reaches total; returns the time it took."""
    started = time.monotonic()
    with tqdm(total=total, desc=desc, unit="order", file=sys.stderr, leave=False) as bar:
        done = 0
        while done < total:
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"{desc}: {done}/{total} after {timeout}s")
            now = count()
            bar.update(now - done)
            done = now
            time.sleep(0.05)
    return time.monotonic() - started


def machine() -> dict[str, object]:
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_report(run: str, figures: dict, chart: Callable[[Path], None]) -> Path:
    """docs/benchmarks/<run>.json and <run>.png."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    figures = {
        "run": run,
        "machine": machine(),
        "measured_at": time.strftime("%Y-%m-%d %H:%M"),
        **figures,
    }
    path = RESULTS_DIR / f"{run}.json"
    path.write_text(json.dumps(figures, indent=2) + "\n")
    chart(RESULTS_DIR / f"{run}.png")
    return path


def print_table(title: str, header: list[str], rows: list[list[object]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    print(f"\n{title}")
    print("  ".join(str(cell).ljust(width) for cell, width in zip(header, widths, strict=True)))
    print("  ".join("-" * width for width in widths))
    for row in rows:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))


class CpuMeter:
    """CPU seconds used by the processes given, this process (the load client), PostgreSQL
    and RabbitMQ, between laps: where the machine's two cores went."""

    def __init__(self, processes: list[ManagedProcess]) -> None:
        # "api-worker" and "plain-worker" are both the "worker" column.
        self.groups = {process.name.rsplit("-", 1)[-1]: process for process in processes}
        self.last = self._read()

    def lap(self) -> dict[str, float]:
        now = self._read()
        spent = {name: round(now[name] - self.last.get(name, 0.0), 3) for name in now}
        self.last = now
        return spent

    def _read(self) -> dict[str, float]:
        totals = {
            name: _tree_cpu(process.process.pid)
            for name, process in self.groups.items()
            if process.process is not None
        }
        totals["client"] = _cpu(psutil.Process())
        totals["postgres"] = totals["rabbitmq"] = 0.0
        for other in psutil.process_iter(["name"]):
            kind = {"postgres": "postgres", "beam.smp": "rabbitmq"}.get(other.info["name"] or "")
            if kind:
                totals[kind] += _cpu(other)
        return totals


def _tree_cpu(pid: int) -> float:
    try:
        root = psutil.Process(pid)
        return sum(_cpu(process) for process in [root, *root.children(recursive=True)])
    except psutil.NoSuchProcess:
        return 0.0


def _cpu(process: psutil.Process) -> float:
    """User + system seconds of a process (children that exited are not counted)."""
    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
        times = process.cpu_times()
        return times.user + times.system
    return 0.0


def print_cpu_table(laps: dict[str, dict[str, float]]) -> None:
    names = list(dict.fromkeys(name for cpu in laps.values() for name in cpu))
    print_table(
        "CPU seconds per phase (2 cores; warm-up included)",
        ["", *names, "total"],
        [
            [phase, *(cpu.get(name, 0.0) for name in names), round(sum(cpu.values()), 1)]
            for phase, cpu in laps.items()
        ],
    )


def print_cpu_per_order(laps: dict[str, dict[str, float]], orders: dict[str, int]) -> None:
    """CPU milliseconds per order of each process group, per phase."""
    names = list(dict.fromkeys(name for cpu in laps.values() for name in cpu))
    print_table(
        "CPU ms per order (all processes; 2 cores)",
        ["", *names, "total"],
        [
            [
                phase,
                *(round(1000 * cpu.get(name, 0.0) / orders[phase], 2) for name in names),
                round(1000 * sum(cpu.values()) / orders[phase], 2),
            ]
            for phase, cpu in laps.items()
        ],
    )


__all__ = ["LOG_DIR", "ROOT", "ManagedProcess", "python_argv"]
