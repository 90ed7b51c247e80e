"""api: POST /api/orders/ under HTTP load beside an insert-only view, same gunicorn, same clients.

One gunicorn (bench.settings: the project's URLs plus the baselines) serves both sides. The
relay and one celery worker run as well, so published orders are consumed and the queues do
not grow without bound; their CPU is part of what Orderflow costs on this machine.
The baseline is measured first, while the worker is idle: measured second, it would share
the CPU with the backlog Orderflow's phase left behind.
"""

import os
import sys
from pathlib import Path

from .common import (
    CpuMeter,
    flame_graphs,
    print_cpu_per_order,
    print_cpu_table,
    print_table,
    process_env,
    setup_django,
    write_report,
)
from .http_load import closed_loop
from .web import (
    BODY,
    DRAIN_CONCURRENCY,
    WARMUP_S,
    WEB_WORKERS,
    WORKER_CONCURRENCY,
    client_tokens,
    drain,
    load_row,
    load_succeeded,
    order_outcomes,
    queues_are_free,
    running_system,
    wait_settled,
)

TARGET_RATIO = 0.7


def run(args) -> int:
    setup_django("orderflow_bench_api")
    from .plain import CREATED as PLAIN_CREATED  # models: after Django is set up

    broker_url = os.environ["CELERY_BROKER_URL"]
    if not queues_are_free(broker_url):
        return 1
    tokens = client_tokens("api", args.clients)
    env = process_env(BILLING_FAKE_FAILURE_RATE="0")
    try:
        with running_system("api", env, consumers=True) as system:
            meter = CpuMeter(system.processes)

            def load(path: str, desc: str):
                return closed_loop(
                    system.base_url + path,
                    tokens=tokens,
                    body=BODY,
                    seconds=args.seconds,
                    warmup=WARMUP_S,
                    desc=desc,
                )

            baseline = load("/bench/insert-only/", "insert-only")
            baseline_cpu = meter.lap()
            plain = load("/bench/plain/", "plain")
            # Its backlog is finished before Orderflow's phase, whose CPU it would share.
            wait_settled(events__cause=PLAIN_CREATED)
            plain_cpu = meter.lap()
            with flame_graphs(system.processes, args.profile):
                orderflow = load("/api/orders/", "Orderflow")
            orderflow_cpu = meter.lap()
            system.web.stop()
            outcomes = order_outcomes(events__cause="created")  # Orderflow's orders only
        drained = drain("api", env)
    except (RuntimeError, TimeoutError) as error:
        print(f"api: {error}", file=sys.stderr)
        return 1

    ratio = round(orderflow.requests_per_s / baseline.requests_per_s, 3)
    ratio_plain = round(orderflow.requests_per_s / plain.requests_per_s, 3)
    figures = {
        "clients": args.clients,
        "seconds": args.seconds,
        "warmup_s": WARMUP_S,
        "body": BODY,
        "insert_only": {**baseline.figures(), "cpu_s": baseline_cpu},
        "plain": {**plain.figures(), "cpu_s": plain_cpu},
        "orderflow": {**orderflow.figures(), "cpu_s": orderflow_cpu},
        "ratio": ratio,
        "ratio_to_plain": ratio_plain,
        "target": f"ratio >= {TARGET_RATIO}",
        "target_met": ratio >= TARGET_RATIO,
        "order_statuses_when_load_ended": outcomes,
        "drain": drained,
        "processes": [
            f"gunicorn config.wsgi, DJANGO_SETTINGS_MODULE=bench.settings, {WEB_WORKERS} sync "
            "workers, no access log",
            f"celery worker, queues fraud,billing, concurrency {WORKER_CONCURRENCY} "
            "(running during both phases; idle during insert-only)",
            "manage.py relay_outbox",
            f"after the load: a drain worker (concurrency {DRAIN_CONCURRENCY}) and relay until "
            "every order is settled, so the shared queues are left empty",
            f"load: {args.clients} client threads in the bench process, one buyer and token "
            "each, a new connection per request",
            "PostgreSQL and RabbitMQ: the machine's",
        ],
        "note": (
            "Baseline measured first (worker idle), then Orderflow (worker consuming what it "
            "publishes). cpu_s: CPU seconds used during each phase, warm-up included. The "
            "client is Python threads under the GIL: absolute requests/s are a floor, the "
            "ratio is fair (same client both sides)."
        ),
    }
    rows = [
        load_row("insert-only", baseline),
        load_row("plain", plain),
        load_row("Orderflow", orderflow),
        ["Orderflow / insert-only", "", ratio, "", "", "", ""],
        ["Orderflow / plain", "", ratio_plain, "", "", "", ""],
    ]
    print_table(
        f"api: {args.clients} clients, {args.seconds:g} s each (+{WARMUP_S:g} s warm-up); "
        f"target ratio >= {TARGET_RATIO}",
        ["", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors"],
        rows,
    )
    print_cpu_table({"insert-only": baseline_cpu, "plain": plain_cpu, "Orderflow": orderflow_cpu})
    print_cpu_per_order(
        {"plain": plain_cpu, "Orderflow": orderflow_cpu},
        {"plain": len(plain.ok), "Orderflow": len(orderflow.ok)},
    )
    print(f"order statuses when the load ended: {outcomes}; drain: {drained}")
    write_report("api", figures, lambda path: chart(path, figures))
    return 0 if load_succeeded(baseline, orderflow) else 1


def chart(path: Path, figures: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    sides = {
        "insert-only": figures["insert_only"],
        "plain": figures["plain"],
        "Orderflow": figures["orderflow"],
    }
    colours = ["grey", "tab:orange", "tab:blue"]
    figure, (rate, latency) = pyplot.subplots(1, 2, figsize=(10, 4))
    rate.bar(list(sides), [side["requests_per_s"] for side in sides.values()], color=colours)
    rate.set_title(f"requests/s (ratio {figures['ratio']}, target >= {TARGET_RATIO})")
    for offset, colour, (name, side) in zip((-0.27, 0, 0.27), colours, sides.items(), strict=True):
        values = [side["latency_ms"]["p50"], side["latency_ms"]["p99"]]
        latency.bar([i + offset for i in range(2)], values, width=0.27, color=colour, label=name)
    latency.set_xticks(range(2), ["p50", "p99"])
    latency.set_title("latency (ms)")
    latency.legend()
    figure.suptitle(
        f"api: POST /api/orders/ vs insert-only, {figures['clients']} clients, "
        f"{figures['seconds']:g} s"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
