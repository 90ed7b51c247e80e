"""pipeline: Orderflow's orders/s and latency beside bare Celery's, same broker, same workers."""

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .common import (
    LOG_DIR,
    CpuMeter,
    ManagedProcess,
    celery_worker,
    create_orders,
    flame_graphs,
    make_buyers,
    paced,
    percentiles,
    print_cpu_per_order,
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
    sides = {
        "bare Celery": measure_ceiling(args.orders, args.concurrency, pool=args.pool),
        "plain": measure_plain(args.orders, args.concurrency, pool=args.pool),
        "Orderflow": measure_orderflow(
            args.orders, args.concurrency, profile=args.profile, pool=args.pool
        ),
    }
    ceiling, plain, orderflow = sides.values()
    ratio = round(orderflow["per_s"] / ceiling["per_s"], 3)
    ratio_plain = round(orderflow["per_s"] / plain["per_s"], 3)
    figures = {
        "orders": args.orders,
        "concurrency": args.concurrency,
        "pool": args.pool,
        "ceiling_per_s": ceiling["per_s"],
        "plain_per_s": plain["per_s"],
        "orderflow_per_s": orderflow["per_s"],
        "ratio": ratio,
        "ratio_to_plain": ratio_plain,
        "ceiling_latency_s": ceiling["latency_s"],
        "plain_latency_s": plain["latency_s"],
        "orderflow_latency_s": orderflow["latency_s"],
        "cpu_s": {name: side["cpu_s"] for name, side in sides.items()},
        "cpu_ms_per_order": {
            name: round(1000 * sum(side["cpu_s"].values()) / args.orders, 2)
            for name, side in sides.items()
        },
    }
    print_table(
        f"pipeline: {args.orders} orders, worker concurrency {args.concurrency} ({args.pool})",
        ["", "orders/s", "p50 s", "p95 s", "p99 s"],
        [
            *([name, side["per_s"], *side["latency_s"].values()] for name, side in sides.items()),
            ["Orderflow / bare Celery", ratio, "", "", ""],
            ["Orderflow / plain", ratio_plain, "", "", ""],
        ],
    )
    print_cpu_per_order(
        {name: side["cpu_s"] for name, side in sides.items()},
        dict.fromkeys(sides, args.orders),
    )
    write_report("pipeline", figures, lambda path: chart(path, figures))
    return 0


def measure_ceiling(
    orders: int, concurrency: int, rate: float | None = None, pool: str = "prefork"
) -> dict:
    from bench.ceiling import hop_a

    done_file = Path(tempfile.mkstemp(prefix="bench-ceiling-")[1])
    worker = celery_worker(
        "ceiling-worker",
        "bench_a,bench_b",
        concurrency,
        process_env(BENCH_DONE_FILE=str(done_file)),
        app="bench.ceiling",
        pool=pool,
    ).start()
    try:
        wait_for_consumers("bench_a,bench_b")
        meter = CpuMeter([worker])
        started = time.time()
        for chain in paced(orders, rate):
            hop_a.apply_async(args=(chain, time.time()))
        wait_until_count(lambda: _lines(done_file), orders, "ceiling", timeout=600)
        cpu = meter.lap()
    finally:
        worker.stop()
    rows = [line.split() for line in done_file.read_text().splitlines()]
    done_file.unlink()
    finished = max(float(row[2]) for row in rows)
    return {
        "per_s": round(orders / (finished - started), 1),
        "latency_s": percentiles([float(row[2]) - float(row[1]) for row in rows]),
        "cpu_s": cpu,
    }


def measure_plain(
    orders: int, concurrency: int, rate: float | None = None, pool: str = "prefork"
) -> dict:
    """The plain implementation (bench/plain.py): delay() after commit, save() in tasks."""
    from bench import plain

    buyers = make_buyers(orders=orders, prefix="plain")
    worker = celery_worker(
        "plain-worker",
        ",".join(plain.QUEUES),
        concurrency,
        process_env(),
        app="bench.plain_worker",
        pool=pool,
    ).start()
    try:
        wait_for_consumers(",".join(plain.QUEUES))
        meter = CpuMeter([worker])
        started = time.time()
        ids = [
            plain.create_order(
                buyer=buyers[n % len(buyers)],
                product_name=f"Plain {n}",
                quantity=1,
                unit_price_minor=2500,
                currency="EUR",
            ).id
            for n in paced(orders, rate)
        ]
        _wait_terminal(ids, "plain")
        cpu = meter.lap()
    finally:
        worker.stop()
    return {**_order_figures(ids, started), "cpu_s": cpu}


def measure_orderflow(
    orders: int,
    concurrency: int,
    profile: Path | None = None,
    rate: float | None = None,
    pool: str = "prefork",
    worker_env: dict[str, str] | None = None,
    relay_env: dict[str, str] | None = None,
    relay_args: tuple[str, ...] = (),
    buyer_prefix: str = "bench",
    prepare_buyers: Callable[[list], None] | None = None,
) -> dict:
    """Orderflow's worker and relay; `worker_env` and `relay_env` add to each one's environment,
    `relay_args` to the relay's command.
    Each call in one invocation needs buyers of its own (`buyer_prefix`), under the hourly rule;
    `prepare_buyers` gets them before the first order (to subscribe them to webhooks)."""
    buyers = make_buyers(orders=orders, prefix=buyer_prefix)
    if prepare_buyers is not None:
        prepare_buyers(buyers)
    env = process_env()
    worker = celery_worker(
        "orderflow-worker", "fraud,billing", concurrency, env | (worker_env or {}), pool=pool
    ).start()
    relay = ManagedProcess(
        "relay",
        python_argv("manage.py", "relay_outbox", *relay_args),
        env | (relay_env or {}),
        LOG_DIR,
    ).start()
    try:
        wait_for_consumers("fraud,billing")
        with flame_graphs([worker, relay], profile):
            meter = CpuMeter([worker, relay])
            started = time.time()
            ids = create_orders(buyers=buyers, orders=orders, label="Bench", rate=rate)
            _wait_terminal(ids, "orderflow")
            cpu = meter.lap()
    finally:
        relay.stop()
        worker.stop()
    return {**_order_figures(ids, started), "cpu_s": cpu}


def _wait_terminal(ids: list, desc: str) -> None:
    from ordering.models import Order
    from ordering.state_machine import TERMINAL_STATUSES

    finished_orders = Order.objects.filter(pk__in=ids, status__in=TERMINAL_STATUSES)
    wait_until_count(finished_orders.count, len(ids), desc, timeout=600)


def _order_figures(ids: list, started: float) -> dict:
    """Orders/s from `started` to the last order's last event; latency created -> terminal."""
    from django.db.models import Max

    from ordering.models import Order, OrderEvent

    last = OrderEvent.objects.filter(order_id__in=ids).values("order_id").annotate(at=Max("at"))
    created = dict(Order.objects.filter(pk__in=ids).values_list("id", "created_at"))
    latencies = [(row["at"] - created[row["order_id"]]).total_seconds() for row in last]
    finished = max(row["at"] for row in last).timestamp()
    return {
        "per_s": round(len(ids) / (finished - started), 1),
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
    names = {"bare Celery": "ceiling", "plain": "plain", "Orderflow": "orderflow"}
    rate.bar(
        list(names),
        [figures[f"{key}_per_s"] for key in names.values()],
        color=["grey", "tab:orange", "tab:blue"],
    )
    rate.set_title(f"orders/s (x{figures['ratio']} bare, x{figures['ratio_to_plain']} plain)")
    for offset, (name, key) in zip((-0.27, 0, 0.27), names.items(), strict=True):
        values = list(figures[f"{key}_latency_s"].values())
        latency.bar([i + offset for i in range(3)], values, width=0.27, label=name)
    latency.set_xticks(range(3), ["p50", "p95", "p99"])
    latency.set_title("latency, created -> terminal (s)")
    latency.legend()
    figure.suptitle(f"pipeline: {figures['orders']} orders, concurrency {figures['concurrency']}")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
