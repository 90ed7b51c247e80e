"""backlog: orders queued before any worker starts, drained; 10x against 1x.

Retries wait in the broker and prefetch is 1, so a worker's memory must not grow with the
queue behind it, and its drain rate must not fall.
"""

import os
import threading
import time
from pathlib import Path

from .common import (
    LOG_DIR,
    ManagedProcess,
    celery_worker,
    create_orders,
    make_buyers,
    print_table,
    process_env,
    python_argv,
    setup_django,
    tree_rss,
    wait_for_consumers,
    wait_until_count,
    write_report,
)


def run(args) -> int:
    setup_django("orderflow_bench_backlog")
    from chaos.broker import reset_topology

    reset_topology(os.environ["CELERY_BROKER_URL"])
    one = drain(args.orders, args.concurrency, "1x")
    ten = drain(args.orders * 10, args.concurrency, "10x")
    figures = {
        "concurrency": args.concurrency,
        "1x": one,
        "10x": ten,
        "drain_ratio": round(ten["drain_per_s"] / one["drain_per_s"], 3),
        "rss_ratio": round(ten["peak_rss_mib"] / one["peak_rss_mib"], 3),
    }
    print_table(
        f"backlog: worker concurrency {args.concurrency}",
        ["backlog", "orders", "drained/s", "worker peak RSS MiB"],
        [
            ["1x", one["orders"], one["drain_per_s"], one["peak_rss_mib"]],
            ["10x", ten["orders"], ten["drain_per_s"], ten["peak_rss_mib"]],
            ["10x / 1x", "", figures["drain_ratio"], figures["rss_ratio"]],
        ],
    )
    write_report("backlog", figures, lambda path: chart(path, figures))
    return 0


def drain(orders: int, concurrency: int, label: str) -> dict:
    """Queue `orders` orders with no worker running, then start one and time the drain."""

    from ordering.models import Order
    from ordering.state_machine import TERMINAL_STATUSES

    buyers = make_buyers(orders=orders, prefix=f"backlog{label}-")
    ids = create_orders(buyers=buyers, orders=orders, label="Backlog")
    env = process_env()
    worker = celery_worker(f"backlog-{label}", "fraud,billing", concurrency, env)
    relay = ManagedProcess("relay", python_argv("manage.py", "relay_outbox"), env, LOG_DIR).start()
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], tree_rss(worker.process.pid))
            time.sleep(0.1)

    worker.start()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        wait_for_consumers("fraud,billing")
        finished = Order.objects.filter(pk__in=ids, status__in=TERMINAL_STATUSES)
        seconds = wait_until_count(finished.count, orders, f"drain {label}", timeout=1200)
    finally:
        stop.set()
        sampler.join()
        relay.stop()
        worker.stop()
    return {
        "orders": orders,
        "drain_seconds": round(seconds, 1),
        "drain_per_s": round(orders / seconds, 1),
        "peak_rss_mib": round(peak[0] / 2**20, 1),
    }


def chart(path: Path, figures: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (rate, memory) = pyplot.subplots(1, 2, figsize=(9, 4))
    labels = ["1x", "10x"]
    rate.bar(labels, [figures[k]["drain_per_s"] for k in labels], color="tab:blue")
    rate.set_title(f"drain rate, orders/s (10x/1x {figures['drain_ratio']})")
    memory.bar(labels, [figures[k]["peak_rss_mib"] for k in labels], color="tab:orange")
    memory.set_title(f"worker peak RSS, MiB (10x/1x {figures['rss_ratio']})")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
