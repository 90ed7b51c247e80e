"""How a process hands its metrics to Prometheus: one registry to scrape, and a port to serve.

Under gunicorn and Celery's prefork pool the work happens in child processes. With
PROMETHEUS_MULTIPROC_DIR in the environment of the whole process tree (it must be set before
prometheus_client is imported, so from the shell, not from Python), each child writes its
counters and histograms to files there and a scrape adds them up (MultiProcessCollector),
whichever process answers it. Each tree needs a directory of its own, emptied when the tree
starts (gunicorn's on_starting, the worker's worker_init): files of an earlier run would be
added in. Without the variable a process exposes only its own metrics.
"""

import glob
import logging
import os

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def empty_multiprocess_dir() -> None:
    """At the start of a process tree: forget the metrics files an earlier run left."""
    if path := multiprocess_dir():
        os.makedirs(path, exist_ok=True)
        for stale in glob.glob(os.path.join(path, "*.db")):
            os.remove(stale)


def process_exited(pid: int) -> None:
    """A child of the tree is gone: drop its files of live gauges (counters stay counted)."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)


def scrape_registry(*collectors: Collector) -> CollectorRegistry:
    """The tree's metrics (or this process's), plus `collectors`, read at each scrape."""
    registry = CollectorRegistry()
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(REGISTRY)  # a registry is a collector of everything registered on it
    for collector in collectors:
        registry.register(collector)
    return registry


def serve(*, port: int, process: str) -> None:
    """Serve this tree's metrics on `port` (all addresses), from a daemon thread.

    For processes that have no web server of their own (worker, relay). Unauthenticated, like
    any exporter port: keep it on the private network, never behind the public router.
    """
    start_http_server(port, registry=scrape_registry())
    logger.info(
        "%s metrics served on port %s (%s)",
        process,
        port,
        "multiprocess" if multiprocess_dir() else "this process only",
    )
