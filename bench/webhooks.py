"""webhooks: the pipeline's orders/s with every buyer subscribed to webhooks, against none.

The same Orderflow pipeline run (`pipeline`'s Orderflow side), rounds alternating the order of
the sides:
- none: no endpoint registered;
- outcome: each buyer has an endpoint for the outcomes (processed, payment failed, canceled,
  failed), what a client that stopped polling wants: one event per order here;
- every event: an endpoint for every event type, two per order here (approved, processed).
  Each writes a delivery and its outbox message in the change's transaction. The pipeline's
  relay publishes the outbox's main lane, as in the Procfile (`relay_outbox --lane main`).
  The webhooks side (the Procfile's `webhooks` worker and `webhooks_relay`) runs on cores of
  its own in a deployment; on these two sides it is started once the pipeline is done, so
  what is measured is the pipeline's cost;
- every event, sending alongside: the webhooks relay and worker (concurrency 2) publish and
  send to the receiver while the pipeline runs, on the same two cores: what sharing a host
  costs.
After each subscribed side every delivery must be DELIVERED to a receiver on loopback (the
bench process), each verified against its endpoint's secret, or the run fails.
"""

import os
import statistics

from chaos.receiver import Receiver

from .common import (
    LOG_DIR,
    ManagedProcess,
    celery_worker,
    print_table,
    process_env,
    python_argv,
    setup_django,
    wait_for_consumers,
    wait_until_count,
    write_report,
)
from .pipeline import measure_orderflow

SIDES = ("none", "outcome", "every event", "every event, sending alongside")
OUTCOME_EVENTS = [
    "order.processed",
    "order.payment_failed",
    "order.canceled_fraud",
    "order.canceled",
    "order.failed",
]
WEBHOOK_ENV = {"WEBHOOK_ALLOW_LOOPBACK": "1"}


def run(args) -> int:
    os.environ.update(WEBHOOK_ENV)  # the endpoints below are registered on loopback
    setup_django("orderflow_bench_webhooks")
    from chaos.broker import reset_topology

    reset_topology(os.environ["CELERY_BROKER_URL"])
    receiver = Receiver().start()
    measured: dict[str, list[dict]] = {side: [] for side in SIDES}
    try:
        for round_number in range(args.rounds):
            order = SIDES if round_number % 2 == 0 else tuple(reversed(SIDES))
            for side in order:
                prefix = f"wh{round_number}-{SIDES.index(side)}-"
                measured[side].append(measure_side(side, args, receiver, prefix))
    finally:
        receiver.stop()
    report, rows = summarise(measured, args)
    print_table(
        f"webhooks: {args.orders} orders, concurrency {args.concurrency}, {args.rounds} rounds "
        "(sides alternate their order)",
        [
            "",
            "orders/s",
            "vs none (median of rounds)",
            "CPU ms per order: worker / relay / postgres / rabbitmq",
            "worker + relay vs none",
        ],
        rows,
    )
    write_report(
        "webhooks",
        {"orders": args.orders, "concurrency": args.concurrency, "sides": report},
        lambda path: chart(path, report),
    )
    return 0


def chart(path, report: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (rate, cpu) = pyplot.subplots(1, 2, figsize=(10, 4))
    names = list(report)
    rate.bar(names, [report[n]["rate_vs_none"] for n in names], color="tab:blue")
    rate.set_title("orders/s, against no subscribers")
    cpu.bar(names, [report[n]["cpu_vs_none"] for n in names], color="tab:orange")
    cpu.set_title("CPU per order (worker + relay), against none")
    rate.axhline(0.9, color="red", linewidth=0.8, linestyle="--")  # the target: within 10%
    cpu.axhline(1.1, color="red", linewidth=0.8, linestyle="--")
    for axis in (rate, cpu):
        axis.axhline(1.0, color="grey", linewidth=0.8)
        axis.tick_params(axis="x", labelrotation=15)
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)


def measure_side(side: str, args, receiver: Receiver, prefix: str) -> dict:
    subscribed = side != "none"
    event_types = OUTCOME_EVENTS if side == "outcome" else None
    sender = None
    if side == "every event, sending alongside":
        sender = Sender()
    try:
        figures = measure_orderflow(
            args.orders,
            args.concurrency,
            relay_args=("--lane", "main"),
            buyer_prefix=prefix,
            prepare_buyers=(
                (lambda buyers: subscribe(buyers, receiver, event_types)) if subscribed else None
            ),
        )
        if subscribed:
            sender = sender or Sender()
            check_every_delivery(prefix, receiver)
    finally:
        if sender is not None:
            sender.stop()
    return figures


class Sender:
    """The webhooks side: its relay and its worker."""

    def __init__(self) -> None:
        env = process_env(**WEBHOOK_ENV)
        self.relay = ManagedProcess(
            "webhooks-relay",
            python_argv("manage.py", "relay_outbox", "--lane", "webhooks"),
            env,
            LOG_DIR,
        ).start()
        self.worker = celery_worker("bench-webhooks", "webhooks", 2, env).start()
        wait_for_consumers("webhooks")

    def stop(self) -> None:
        self.worker.stop()
        self.relay.stop()


def subscribe(buyers: list, receiver: Receiver, event_types: list[str] | None) -> None:
    """An endpoint for each buyer, to `event_types` (every type when None)."""
    from webhooks import events, services

    for buyer in buyers:
        services.create_endpoint(
            owner=buyer, url=receiver.url, event_types=event_types or sorted(events.EVENT_TYPES)
        )


def check_every_delivery(prefix: str, receiver: Receiver) -> None:
    """Every delivery of these buyers' orders taken by the receiver, each signature valid."""
    from webhooks import services, signing
    from webhooks.models import WebhookDelivery

    deliveries = WebhookDelivery.objects.filter(endpoint__owner__username__startswith=prefix)
    total = deliveries.count()
    delivered = deliveries.filter(status="DELIVERED")
    wait_until_count(delivered.count, total, f"{prefix} webhook deliveries", timeout=600)
    secrets = {d.id: services.signing_secrets(d.endpoint) for d in deliveries}
    by_delivery = {r.headers["Orderflow-Delivery-Id"]: r for r in receiver.taken()}
    for delivery_id, secret in secrets.items():
        request = by_delivery[str(delivery_id)]
        timestamp, signature = request.headers["Orderflow-Signature"].split(",")[:2]
        expected = signing.signature(
            secret=secret[0], timestamp=int(timestamp[2:]), body=request.body
        )
        assert signature == f"v1={expected}", f"bad signature on delivery {delivery_id}"
    print(f"{prefix}: {total} webhook deliveries, all taken and verified ({LOG_DIR})")


PROCESSES = ("worker", "relay", "postgres", "rabbitmq")


def summarise(measured: dict[str, list[dict]], args) -> tuple[dict, list]:
    """Orders/s and CPU per order against `none`; the CPU of the pipeline's worker and relay,
    and of PostgreSQL and RabbitMQ (all of theirs on the machine, whoever asked).

    A side's rate against none is the median of its rounds' ratios, each to the none run of
    the same round: this machine's speed drifts between rounds more than the sides differ.
    """

    def cpu_ms(figures: dict, process: str) -> float:
        return round(1000 * figures["cpu_s"].get(process, 0.0) / args.orders, 2)

    def mean(values) -> float:
        values = list(values)
        return sum(values) / len(values)

    none_cpu = mean(cpu_ms(f, "worker") + cpu_ms(f, "relay") for f in measured["none"])
    report, rows = {}, []
    for side, runs in measured.items():
        cpu = {p: round(mean(cpu_ms(f, p) for f in runs), 2) for p in PROCESSES}
        report[side] = {
            "per_s": [f["per_s"] for f in runs],
            "p99_s": [f["latency_s"]["p99"] for f in runs],
            "cpu_ms_per_order": cpu,
            "rate_vs_none": round(
                statistics.median(
                    f["per_s"] / none["per_s"]
                    for f, none in zip(runs, measured["none"], strict=True)
                ),
                3,
            ),
            "cpu_vs_none": round((cpu["worker"] + cpu["relay"]) / none_cpu, 3),
        }
        rows.append(
            [
                side,
                ", ".join(str(f["per_s"]) for f in runs),
                report[side]["rate_vs_none"],
                " / ".join(str(cpu[p]) for p in PROCESSES),
                report[side]["cpu_vs_none"],
            ]
        )
    return report, rows
