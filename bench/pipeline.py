"""pipeline: Orderflow's orders/s and latency beside bare Celery's, same broker, same workers."""

import os
import tempfile
import time
from pathlib import Path

from .common import (
    LOG_DIR,
    ManagedProcess,
    celery_worker,
    create_orders,
    make_buyers,
    percentiles,
    print_table,
    process_env,
    python_argv,
    setup_django,
    wait_for_consumers,
    wait_until_count,
    write_report,
)


def run(args) -> int:
    setup_django("orderflow_bench_pipeline")
    from chaos.broker import reset_topology

    broker_url = os.environ["CELERY_BROKER_URL"]
    reset_topology(broker_url)
    ceiling = measure_ceiling(args.orders, args.concurrency)
    orderflow = measure_orderflow(args.orders, args.concurrency)
    ratio = round(orderflow["per_s"] / ceiling["per_s"], 3)
    figures = {
        "orders": args.orders,
        "concurrency": args.concurrency,
        "ceiling_per_s": ceiling["per_s"],
        "orderflow_per_s": orderflow["per_s"],
        "ratio": ratio,
        "ceiling_latency_s": ceiling["latency_s"],
        "orderflow_latency_s": orderflow["latency_s"],
    }
    print_table(
        f"pipeline: {args.orders} orders, worker concurrency {args.concurrency}",
        ["", "orders/s", "p50 s", "p95 s", "p99 s"],
        [
            ["bare Celery (ceiling)", ceiling["per_s"], *ceiling["latency_s"].values()],
            ["Orderflow", orderflow["per_s"], *orderflow["latency_s"].values()],
            ["ratio", ratio, "", "", ""],
        ],
    )
    write_report("pipeline", figures, lambda path: chart(path, figures))
    return 0


def measure_ceiling(orders: int, concurrency: int) -> dict:
    from bench.ceiling import hop_a

    done_file = Path(tempfile.mkstemp(prefix="bench-ceiling-")[1])
    worker = celery_worker(
        "ceiling-worker",
        "bench_a,bench_b",
        concurrency,
        process_env(BENCH_DONE_FILE=str(done_file)),
        app="bench.ceiling",
    ).start()
    try:
        wait_for_consumers("bench_a,bench_b")
        started = time.time()
        for chain in range(orders):
            hop_a.apply_async(args=(chain, time.time()))
        wait_until_count(lambda: _lines(done_file), orders, "ceiling", timeout=600)
    finally:
        worker.stop()
    rows = [line.split() for line in done_file.read_text().splitlines()]
    done_file.unlink()
    finished = max(float(row[2]) for row in rows)
    return {
        "per_s": round(orders / (finished - started), 1),
        "latency_s": percentiles([float(row[2]) - float(row[1]) for row in rows]),
    }


def measure_orderflow(orders: int, concurrency: int) -> dict:
    from django.db.models import Max

    from ordering.models import Order, OrderEvent
    from ordering.state_machine import TERMINAL_STATUSES

    buyers = make_buyers(orders=orders, prefix="bench")
    env = process_env()
    worker = celery_worker("orderflow-worker", "fraud,billing", concurrency, env).start()
    relay = ManagedProcess("relay", python_argv("manage.py", "relay_outbox"), env, LOG_DIR).start()
    try:
        wait_for_consumers("fraud,billing")
        started = time.time()
        ids = create_orders(buyers=buyers, orders=orders, label="Bench")
        finished_orders = Order.objects.filter(pk__in=ids, status__in=TERMINAL_STATUSES)
        wait_until_count(finished_orders.count, orders, "orderflow", timeout=600)
    finally:
        relay.stop()
        worker.stop()
    last = OrderEvent.objects.filter(order_id__in=ids).values("order_id").annotate(at=Max("at"))
    created = dict(Order.objects.filter(pk__in=ids).values_list("id", "created_at"))
    latencies = [(row["at"] - created[row["order_id"]]).total_seconds() for row in last]
    finished = max(row["at"] for row in last).timestamp()
    return {
        "per_s": round(orders / (finished - started), 1),
        "latency_s": percentiles(latencies),
    }


def _lines(path: Path) -> int:
    with path.open() as done:
        return sum(1 for _ in done)


def chart(path: Path, figures: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (rate, latency) = pyplot.subplots(1, 2, figsize=(10, 4))
    names = ["bare Celery", "Orderflow"]
    rate.bar(
        names, [figures["ceiling_per_s"], figures["orderflow_per_s"]], color=["grey", "tab:blue"]
    )
    rate.set_title(f"orders/s (ratio {figures['ratio']})")
    for offset, key in ((-0.2, "ceiling_latency_s"), (0.2, "orderflow_latency_s")):
        values = list(figures[key].values())
        latency.bar([i + offset for i in range(3)], values, width=0.4, label=names[offset > 0])
    latency.set_xticks(range(3), ["p50", "p95", "p99"])
    latency.set_title("latency, created -> terminal (s)")
    latency.legend()
    figure.suptitle(f"pipeline: {figures['orders']} orders, concurrency {figures['concurrency']}")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
