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
    rounds = []
    for number in range(1, args.rounds + 1):
        one = drain(args.orders, args.concurrency, f"1x-{number}")
        ten = drain(args.orders * 10, args.concurrency, f"10x-{number}")
        rounds.append(
            {
                "1x": one,
                "10x": ten,
                "drain_ratio": round(ten["drain_per_s"] / one["drain_per_s"], 3),
                "rss_ratio": round(ten["peak_rss_mib"] / one["peak_rss_mib"], 3),
            }
        )
    figures = {
        "concurrency": args.concurrency,
        "rounds": rounds,
        # The figures of the round with the median drain ratio, for the chart.
        **sorted(rounds, key=lambda r: r["drain_ratio"])[len(rounds) // 2],
        "drain_ratios": [r["drain_ratio"] for r in rounds],
        "rss_ratios": [r["rss_ratio"] for r in rounds],
    }
    print_table(
        f"backlog: worker concurrency {args.concurrency}, {args.rounds} round(s)",
        ["round", "backlog", "orders", "drained/s", "worker peak RSS MiB"],
        [
            row
            for number, r in enumerate(rounds, start=1)
            for row in (
                [number, "1x", r["1x"]["orders"], r["1x"]["drain_per_s"], r["1x"]["peak_rss_mib"]],
                ["", "10x", r["10x"]["orders"], r["10x"]["drain_per_s"], r["10x"]["peak_rss_mib"]],
                ["", "10x / 1x", "", r["drain_ratio"], r["rss_ratio"]],
            )
        ],
    )
    write_report("backlog", figures, lambda path: chart(path, figures))
    return 0


def drain(orders: int, concurrency: int, label: str) -> dict:
    """Queue `orders` orders with no worker running, then start one and time the drain."""

    from ordering.models import Order
    from ordering.state_machine import TERMINAL_STATUSES

    buyers = make_buyers(orders=orders, prefix=f"backlog{label}-")  # new buyers each time
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
