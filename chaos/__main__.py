"""python -m chaos: run the real system under load and faults, then check the invariants.

Exits 0 when every invariant holds, 1 when one fails, 2 when the run could not be made.
"""

import argparse
import json
import logging
import os
import sys
import threading
from pathlib import Path

from .run import ChaosRun, Config, create_database, database_urls, summarize


def parse_args(argv: list[str]) -> tuple[Config, Path | None]:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    add = parser.add_argument
    add("--orders", type=int, default=200, help="orders to post through the API")
    add("--clients", type=int, default=4, help="concurrent HTTP clients")
    add("--workers", type=int, default=2, help="celery worker processes (2 pool processes each)")
    add(
        "--worker-kills",
        type=int,
        default=2,
        help="SIGKILLs of a worker or one of its pool processes",
    )
    add("--broker-restarts", type=int, default=1, help="RabbitMQ restarts during the load")
    add("--db-faults", type=int, default=1, help="killed connections plus a 3 s database outage")
    add("--duplicates", type=float, default=0.1, help="share of messages published twice at once")
    add("--late", type=float, default=0.05, help="share of messages re-published 5-15 s later")
    add(
        "--gateway-failure-rate", type=float, default=0.05, help="share of gateway calls timing out"
    )
    add("--poison", type=int, default=3, help="poison messages mixed in")
    add("--seed", type=int, default=1, help="seed of the fault schedule: same seed, same run")
    add(
        "--settle-timeout", type=float, default=300, help="seconds allowed to settle after the load"
    )
    add(
        "--broker-control",
        choices=["auto", "rabbitmqctl", "proxy"],
        default="auto",
        help="how to restart the broker: rabbitmqctl stop_app/start_app, or cut a TCP proxy",
    )
    add("--report", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    config = Config(**{k: v for k, v in vars(args).items() if k != "report"})
    config.database_url = os.environ.get(
        "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/orderflow"
    )
    config.broker_url = os.environ.get("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    return config, args.report


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config, report_path = parse_args(argv)
    if not config.database_url.startswith(("postgres://", "postgresql://")):
        print("python -m chaos needs PostgreSQL: set DATABASE_URL=postgres://...", file=sys.stderr)
        return 2
    admin_url, run_url, database = database_urls(config.database_url, config.seed)
    create_database(admin_url, database)
    os.environ["DATABASE_URL"] = run_url  # the harness reads the run's database directly
    os.environ["CELERY_BROKER_URL"] = config.broker_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "orderflow-chaos-not-a-secret")
    import django

    django.setup()
    from django.core.management import call_command

    from .broker import consumers_on_work_queues, queue_depth, reset_topology
    from .invariants import all_hold, check_invariants, render_table

    call_command("migrate", verbosity=0)
    busy = consumers_on_work_queues(config.broker_url)
    if busy:
        print(
            f"other consumers are attached to {busy}: stop them first (the run would share its "
            "queues with them)",
            file=sys.stderr,
        )
        return 2
    reset_topology(config.broker_url)
    chaos = ChaosRun(config, admin_url=admin_url, run_url=run_url, database=database)
    try:
        chaos.start_system()
        clients = chaos.make_clients()
        helpers = [
            threading.Thread(target=chaos.inject_faults, daemon=True),
            threading.Thread(target=chaos.duplicate_messages, daemon=True),
        ]
        for helper in helpers:
            helper.start()
        chaos.post_orders(clients)
        for helper in helpers:
            helper.join(timeout=120)
        depths = chaos.settle()
        depths = {q: queue_depth(config.broker_url, q) for q in ("fraud", "billing", "dead_letter")}
        checks = check_invariants(
            accepted=chaos.run.accepted, queue_depths=depths, poison_sent=chaos.run.poison_sent
        )
    finally:
        chaos.stop_system()

    summary = summarize(chaos.run, config)
    print()
    print("faults injected:")
    for fault in summary["faults"]:
        print(f"  {fault['at_s']:>6.1f} s  {fault['what']}")
    print(
        f"orders accepted {summary['orders_accepted']} "
        f"(never accepted: {summary['orders_refused']}), "
        f"duplicates {summary['duplicates_sent']}, late {summary['late_sent']}, "
        f"poison {summary['poison_sent']}; load {summary['load_seconds']} s, "
        f"settled in {summary['settle_seconds']} s"
    )
    print(render_table(checks))
    if report_path:
        summary["invariants"] = [
            {"name": c.name, "figure": c.figure, "ok": c.ok, "problems": c.problems} for c in checks
        ]
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if all_hold(checks) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
