"""python -m bench RUN [options]: measure Orderflow beside its baseline, in one run.

Runs: pipeline (against bare Celery and the plain implementation), latency (at a steady
rate, the same three), api (against an insert-only view and the plain view), decoupling
(against a synchronous design), backlog (10x against 1x), throttle (throttling on against
off), observability (metrics, Sentry and OpenTelemetry on against off), webhooks (every
buyer subscribed against none). Each prints a table and writes docs/benchmarks/<run>.json
and <run>.png.

Each run uses a vhost of its own on CELERY_BROKER_URL's broker, made with rabbitmqctl and
deleted at the end, so it shares no queue with anything else on that broker.
"""

import argparse
import contextlib
import importlib
import os
import sys
from pathlib import Path

from chaos.vhost import VhostError, own_vhost


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    runs = parser.add_subparsers(dest="run", required=True)
    pipeline = runs.add_parser("pipeline", help="orders/s and latency against bare Celery")
    pipeline.add_argument("--orders", type=int, default=500)
    pipeline.add_argument("--concurrency", type=int, default=2)
    pipeline.add_argument(
        "--pool", choices=["prefork", "threads"], default="prefork", help="the workers' pool"
    )
    pipeline.add_argument(
        "--profile", type=Path, help="write py-spy flame graphs of Orderflow's processes here"
    )
    observability = runs.add_parser(
        "observability", help="the pipeline with metrics, Sentry or OpenTelemetry on, vs off"
    )
    observability.add_argument("--orders", type=int, default=300)
    observability.add_argument("--concurrency", type=int, default=2)
    observability.add_argument("--rounds", type=int, default=2)
    webhooks = runs.add_parser(
        "webhooks", help="the pipeline with every buyer subscribed to webhooks, vs none"
    )
    webhooks.add_argument("--orders", type=int, default=500)
    webhooks.add_argument("--concurrency", type=int, default=2)
    webhooks.add_argument("--rounds", type=int, default=6)
    api = runs.add_parser("api", help="POST /api/orders/ against an insert-only view")
    api.add_argument("--clients", type=int, default=8)
    api.add_argument("--seconds", type=float, default=15)
    api.add_argument(
        "--profile", type=Path, help="write py-spy flame graphs of Orderflow's processes here"
    )
    latency = runs.add_parser("latency", help="create-to-terminal at a steady rate")
    latency.add_argument("--rate", type=float, default=20, help="orders per second")
    latency.add_argument("--seconds", type=float, default=15)
    latency.add_argument("--concurrency", type=int, default=2)
    decoupling = runs.add_parser("decoupling", help="API latency, slow gateway, vs synchronous")
    decoupling.add_argument("--clients", type=int, default=4)
    decoupling.add_argument("--seconds", type=float, default=10)
    backlog = runs.add_parser("backlog", help="drain rate and worker memory, 10x against 1x")
    backlog.add_argument("--orders", type=int, default=200, help="the 1x backlog")
    backlog.add_argument("--concurrency", type=int, default=2)
    backlog.add_argument("--rounds", type=int, default=3, help="1x then 10x, this many times")
    throttle = runs.add_parser("throttle", help="POST /api/orders/ with throttling on vs off")
    throttle.add_argument("--clients", type=int, default=4)
    throttle.add_argument("--seconds", type=float, default=10)
    throttle.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    module = importlib.import_module(f"bench.{args.run}")
    broker_url = os.environ.get("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    with contextlib.ExitStack() as stack:
        try:
            vhost_url = stack.enter_context(own_vhost(broker_url, f"orderflow-bench-{args.run}"))
        except VhostError as error:
            print(f"{error}: the benchmark needs a vhost of its own", file=sys.stderr)
            return 2
        os.environ["CELERY_BROKER_URL"] = vhost_url  # read by the run and every process it starts
        return module.run(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
