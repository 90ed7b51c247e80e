"""latency: create-to-terminal latency at a steady rate well below capacity, one invocation.

Bare Celery's two hops (bench/ceiling.py), the plain implementation (bench/plain.py) and
Orderflow each get the same orders at the same fixed rate, one after the other, with the same
worker concurrency; latency is from creation to the last hop (bare Celery) or to the order's
terminal event. At a rate far below throughput nothing queues, so this is what one order
waits for: the hops, the commits and (Orderflow) the relay between them.
"""

import os

from .common import print_table, setup_django, write_report
from .pipeline import measure_ceiling, measure_orderflow, measure_plain

TARGET = 2.0  # Orderflow's p99 at most this many times bare Celery's


def run(args) -> int:
    setup_django("orderflow_bench_latency")
    from chaos.broker import reset_topology

    reset_topology(os.environ["CELERY_BROKER_URL"])
    orders = round(args.rate * args.seconds)
    sides = {
        "bare Celery": measure_ceiling(orders, args.concurrency, rate=args.rate),
        "plain": measure_plain(orders, args.concurrency, rate=args.rate),
        "Orderflow": measure_orderflow(orders, args.concurrency, rate=args.rate),
    }
    p99_ratio = round(
        sides["Orderflow"]["latency_s"]["p99"] / sides["bare Celery"]["latency_s"]["p99"], 2
    )
    figures = {
        "rate_per_s": args.rate,
        "orders": orders,
        "concurrency": args.concurrency,
        "latency_ms": {
            name: {cut: round(1000 * value, 1) for cut, value in side["latency_s"].items()}
            for name, side in sides.items()
        },
        "p99_orderflow_over_bare_celery": p99_ratio,
        "target": f"p99 ratio <= {TARGET}",
        "target_met": p99_ratio <= TARGET,
    }
    print_table(
        f"latency: {orders} orders at {args.rate:g}/s, worker concurrency {args.concurrency}; "
        f"target Orderflow p99 <= {TARGET:g}x bare Celery's",
        ["", "p50 ms", "p95 ms", "p99 ms"],
        [
            *([name, *figures["latency_ms"][name].values()] for name in sides),
            ["Orderflow p99 / bare Celery p99", "", "", p99_ratio],
        ],
    )
    write_report("latency", figures, lambda path: chart(path, figures))
    return 0


def chart(path, figures: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 4))
    sides = figures["latency_ms"]
    for offset, (name, cuts) in zip((-0.27, 0, 0.27), sides.items(), strict=True):
        axes.bar([i + offset for i in range(3)], list(cuts.values()), width=0.27, label=name)
    axes.set_xticks(range(3), ["p50", "p95", "p99"])
    axes.set_ylabel("ms, created -> terminal")
    axes.set_title(
        f"latency at {figures['rate_per_s']:g} orders/s "
        f"(p99 x{figures['p99_orderflow_over_bare_celery']} bare Celery)"
    )
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
