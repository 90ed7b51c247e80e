"""observability: what metrics, error reports and traces cost the pipeline, on against off.

The same Orderflow pipeline run (`pipeline`'s Orderflow side) with each of them on in turn,
rounds alternating the order of the sides: off; Prometheus metrics (multiprocess mode, a
directory per process tree, the worker's and relay's scrape ports open); Sentry reporting
errors only (its default), then with every request and task traced
(SENTRY_TRACES_SAMPLE_RATE=1), to a local receiver that answers 200;
OpenTelemetry with every span exported (OTEL_TRACES_EXPORTER=console, into the process log).
"""

import os
import shutil
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from chaos.proxy import free_port

from .common import print_table, setup_django, write_report
from .pipeline import measure_orderflow

SIDES = ("off", "metrics", "sentry", "sentry traces", "otel traces")


class _Sink(BaseHTTPRequestHandler):
    """Takes whatever a Sentry SDK sends, as sentry.io would, and keeps nothing."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def side_env(side: str, scratch: Path, sink_port: int) -> tuple[dict, dict]:
    """The worker's and the relay's environment additions for one side."""
    if side == "metrics":
        dirs = [scratch / f"metrics-{name}" for name in ("worker", "relay")]
        for directory in dirs:
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True)
        return (
            {"PROMETHEUS_MULTIPROC_DIR": str(dirs[0]), "WORKER_METRICS_PORT": str(free_port())},
            {"PROMETHEUS_MULTIPROC_DIR": str(dirs[1]), "RELAY_METRICS_PORT": str(free_port())},
        )
    if side.startswith("sentry"):
        env = {
            "SENTRY_DSN": f"http://public@127.0.0.1:{sink_port}/1",
            "SENTRY_TRACES_SAMPLE_RATE": "1" if side == "sentry traces" else "0",
        }
        return env, env
    if side == "otel traces":
        return (
            {"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "bench-worker"},
            {"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "bench-relay"},
        )
    return {}, {}


def run(args) -> int:
    setup_django("orderflow_bench_observability")
    from chaos.broker import reset_topology

    reset_topology(os.environ["CELERY_BROKER_URL"])
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    measured: dict[str, list[dict]] = {side: [] for side in SIDES}
    with tempfile.TemporaryDirectory(prefix="bench-observability-") as scratch:
        for round_number in range(args.rounds):
            order = SIDES if round_number % 2 == 0 else tuple(reversed(SIDES))
            for side in order:
                worker_env, relay_env = side_env(side, Path(scratch), sink.server_port)
                measured[side].append(
                    measure_orderflow(
                        args.orders,
                        args.concurrency,
                        worker_env=worker_env,
                        relay_env=relay_env,
                        buyer_prefix=f"obs{round_number}-{side.replace(' ', '-')}-",
                    )
                )
    sink.shutdown()

    def cpu_ms(figures: dict) -> float:
        return round(1000 * sum(figures["cpu_s"].values()) / args.orders, 2)

    off_rate = sum(f["per_s"] for f in measured["off"]) / args.rounds
    off_cpu = sum(cpu_ms(f) for f in measured["off"]) / args.rounds
    rows, report = [], {}
    for side, runs in measured.items():
        rate = sum(f["per_s"] for f in runs) / len(runs)
        cpu = sum(cpu_ms(f) for f in runs) / len(runs)
        report[side] = {
            "per_s": [f["per_s"] for f in runs],
            "cpu_ms_per_order": [cpu_ms(f) for f in runs],
            "p99_s": [f["latency_s"]["p99"] for f in runs],
            "rate_vs_off": round(rate / off_rate, 3),
            "cpu_vs_off": round(cpu / off_cpu, 3),
        }
        rows.append(
            [
                side,
                ", ".join(str(f["per_s"]) for f in runs),
                report[side]["rate_vs_off"],
                ", ".join(str(cpu_ms(f)) for f in runs),
                report[side]["cpu_vs_off"],
            ]
        )
    print_table(
        f"observability: {args.orders} orders, concurrency {args.concurrency}, "
        f"{args.rounds} rounds (sides alternate their order)",
        ["", "orders/s", "vs off", "CPU ms per order (all processes)", "vs off"],
        rows,
    )
    write_report(
        "observability",
        {"orders": args.orders, "concurrency": args.concurrency, "sides": report},
        lambda path: chart(path, report),
    )
    return 0


def chart(path: Path, report: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (rate, cpu) = pyplot.subplots(1, 2, figsize=(10, 4))
    names = list(report)
    rate.bar(names, [report[n]["rate_vs_off"] for n in names], color="tab:blue")
    rate.set_title("orders/s, against off")
    cpu.bar(names, [report[n]["cpu_vs_off"] for n in names], color="tab:orange")
    cpu.set_title("CPU per order, against off")
    for axis in (rate, cpu):
        axis.axhline(1.0, color="grey", linewidth=0.8)
        axis.tick_params(axis="x", labelrotation=20)
    figure.tight_layout()
    figure.savefig(path)
