"""decoupling: API latency with a fast and a slow payment gateway, beside a synchronous design.

Four cases, each on freshly started processes with BILLING_FAKE_LATENCY_MS set for all of
them: Orderflow (gunicorn, relay, one worker; the API only accepts the order) and the
synchronous baseline view (gunicorn alone, OUTBOX_PUBLISH_ON_COMMIT=False; the request
screens and bills the order itself, so it waits for the gateway). Orderflow's p99 should not
move when billing slows down; the synchronous one shows what the decoupling saves.
"""

import os
import sys
from pathlib import Path

from .common import CpuMeter, print_cpu_table, print_table, process_env, setup_django, write_report
from .http_load import LoadResult, closed_loop
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
)

LATENCIES_MS = (0, 500)
TARGET_RATIO = 1.1
DESIGNS = {
    "orderflow": ("Orderflow", "/api/orders/"),
    "synchronous": ("synchronous", "/bench/synchronous/"),
}
# Every order of a case is billed: without this, the hourly rule (20 orders per buyer) would
# cancel most of them at screening, and the synchronous requests would skip the gateway.
FRAUD_MAX_ORDERS_PER_HOUR = "1000000"


def run(args) -> int:
    setup_django("orderflow_bench_decoupling")
    cases: list[dict] = []
    results: list[LoadResult] = []
    for design in DESIGNS:
        for latency_ms in LATENCIES_MS:
            try:
                case, result = measure(design, latency_ms, args)
            except (RuntimeError, TimeoutError) as error:
                print(f"decoupling: {error}", file=sys.stderr)
                return 1
            cases.append(case)
            results.append(result)

    p99 = {(c["design"], c["billing_latency_ms"]): c["latency_ms"]["p99"] for c in cases}
    fast, slow = LATENCIES_MS
    ratios = {
        design: round(p99[design, slow] / p99[design, fast], 3) if p99[design, fast] else None
        for design in DESIGNS
    }
    figures = {
        "clients": args.clients,
        "seconds": args.seconds,
        "warmup_s": WARMUP_S,
        "body": BODY,
        "cases": cases,
        "p99_ratio": ratios,
        "target": f"Orderflow p99({slow} ms) / p99({fast} ms) <= {TARGET_RATIO}",
        "target_met": ratios["orderflow"] is not None and ratios["orderflow"] <= TARGET_RATIO,
        "processes": [
            f"Orderflow cases: gunicorn config.wsgi (DJANGO_SETTINGS_MODULE=bench.settings, "
            f"{WEB_WORKERS} sync workers), celery worker (queues fraud,billing, concurrency "
            f"{WORKER_CONCURRENCY}), manage.py relay_outbox",
            f"synchronous cases: gunicorn alone ({WEB_WORKERS} sync workers), "
            "OUTBOX_PUBLISH_ON_COMMIT=False, no worker or relay (nothing is published)",
            "every process of a case started fresh with BILLING_FAKE_LATENCY_MS of the case, "
            f"BILLING_FAKE_FAILURE_RATE=0, FRAUD_MAX_ORDERS_PER_HOUR={FRAUD_MAX_ORDERS_PER_HOUR}",
            f"after each Orderflow case: a drain worker (concurrency {DRAIN_CONCURRENCY}, no "
            "gateway latency) and relay until its orders are settled",
            f"load: {args.clients} client threads in the bench process, new buyers per case, "
            "a new connection per request",
            "PostgreSQL and RabbitMQ: the machine's",
        ],
        "note": (
            "After each Orderflow case a drain worker (no gateway latency) settles its orders, "
            "so the next case starts with empty queues; order_statuses_when_load_ended shows "
            "how far its orders got while the measured worker ran."
        ),
    }
    print_table(
        f"decoupling: {args.clients} clients, {args.seconds:g} s per case "
        f"(+{WARMUP_S:g} s warm-up); target Orderflow p99 ratio <= {TARGET_RATIO}",
        ["", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors"],
        [
            load_row(f"{DESIGNS[c['design']][0]}, billing {c['billing_latency_ms']} ms", result)
            for c, result in zip(cases, results, strict=True)
        ]
        + [
            [f"{DESIGNS[design][0]} p99 ratio", "", "", "", "", ratio, ""]
            for design, ratio in ratios.items()
        ],
    )
    print_cpu_table(
        {f"{DESIGNS[c['design']][0]}, {c['billing_latency_ms']} ms": c["cpu_s"] for c in cases}
    )
    for case in cases:
        print(
            f"{case['design']} {case['billing_latency_ms']} ms: order statuses when the load "
            f"ended {case['order_statuses_when_load_ended']}, drain {case['drain']}"
        )
    write_report("decoupling", figures, lambda path: chart(path, figures))
    return 0 if load_succeeded(*results) else 1


def measure(design: str, latency_ms: int, args) -> tuple[dict, LoadResult]:
    """One case: fresh processes with the gateway's latency, fresh buyers, the load."""
    from django.contrib.auth import get_user_model

    orderflow = design == "orderflow"
    # Checked before every case: another run may have started since the last one.
    if orderflow and not queues_are_free(os.environ["CELERY_BROKER_URL"]):
        raise RuntimeError("the shared queues are in use; run stopped")
    name = f"decoupling-{design}-{latency_ms}"
    tokens = client_tokens(name, args.clients)
    env = process_env(
        BILLING_FAKE_LATENCY_MS=str(latency_ms),
        BILLING_FAKE_FAILURE_RATE="0",
        FRAUD_MAX_ORDERS_PER_HOUR=FRAUD_MAX_ORDERS_PER_HOUR,
        # Orderflow: the relay publishes, as in production; synchronous: nothing is published.
        **({} if orderflow else {"OUTBOX_PUBLISH_ON_COMMIT": "0"}),
    )
    with running_system(name, env, consumers=orderflow) as system:
        meter = CpuMeter(system.processes)
        result = closed_loop(
            system.base_url + DESIGNS[design][1],
            tokens=tokens,
            body=BODY,
            seconds=args.seconds,
            warmup=WARMUP_S,
            desc=f"{DESIGNS[design][0]}, billing {latency_ms} ms",
        )
        cpu = meter.lap()
        system.web.stop()
        buyers = get_user_model().objects.filter(username__startswith=f"{name}-client-")
        statuses = order_outcomes(buyer__in=buyers)
    drained = drain(name, env) if orderflow else None
    case = {
        "design": design,
        "billing_latency_ms": latency_ms,
        **result.figures(),
        "cpu_s": cpu,
        "order_statuses_when_load_ended": statuses,
        "drain": drained,
    }
    return case, result


def chart(path: Path, figures: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    cases = figures["cases"]
    labels = [f"{DESIGNS[c['design']][0]}\nbilling {c['billing_latency_ms']} ms" for c in cases]
    colours = ["tab:blue" if c["design"] == "orderflow" else "grey" for c in cases]
    figure, (rate, latency) = pyplot.subplots(1, 2, figsize=(12, 4.5))
    rate.bar(labels, [c["requests_per_s"] for c in cases], color=colours)
    rate.set_title("requests/s")
    for offset, key in ((-0.2, "p50"), (0.2, "p99")):
        bars = latency.bar(
            [i + offset for i in range(len(cases))],
            [c["latency_ms"][key] for c in cases],
            width=0.4,
            label=key,
        )
        latency.bar_label(bars, fmt="%.0f", fontsize=8)
    latency.set_xticks(range(len(cases)), labels)
    latency.set_yscale("log")
    latency.set_ylim(bottom=1)
    ratios = figures["p99_ratio"]
    latency.set_title(
        f"latency (ms, log scale)\np99 500/0 ms: Orderflow {ratios['orderflow']}, "
        f"synchronous {ratios['synchronous']}"
    )
    latency.legend()
    figure.suptitle(
        f"decoupling: API latency with a slow gateway, {figures['clients']} clients, "
        f"{figures['seconds']:g} s per case"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
