"""python -m chaos: run the real system under load and faults, then check the invariants.

Exits 0 when every invariant holds, 1 when one fails, 2 when the run could not be made.
"""

import argparse
import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

from .run import MEASURED_QUEUES, ChaosRun, Config, create_database, database_urls, summarize
from .vhost import VhostError, own_vhost


def parse_args(argv: list[str]) -> tuple[Config, Path | None]:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    add = parser.add_argument
    add("--orders", type=int, default=200, help="orders to post through the API")
    add("--clients", type=int, default=4, help="concurrent HTTP clients")
    add("--rate", type=float, default=0, help="orders per second in all (default: unpaced)")
    add("--workers", type=int, default=2, help="celery worker processes (2 pool processes each)")
    add(
        "--worker-kills",
        type=int,
        default=2,
        help="SIGKILLs of a worker or one of its pool processes",
    )
    add(
        "--broker-restarts",
        type=int,
        help="RabbitMQ restarts during the load (default 1; 0, and no other, with --cluster)",
    )
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
        "--broker",
        choices=["node", "url"],
        default="node",
        help="node: a RabbitMQ node of the run's own (RABBITMQ_ROOT picks the server, as for "
        "--cluster); url: CELERY_BROKER_URL's broker, in a vhost made for the run (rabbitmqctl), "
        "its restarts made by cutting proxies, no alarms",
    )
    kinds = parser.add_argument_group("faults around alarms and dead letters")
    add = kinds.add_argument
    add("--alarms", type=int, default=0, help="resource alarms, memory then disk (needs a node)")
    add("--alarm-seconds", type=float, default=8, help="how long each alarm holds")
    add(
        "--stale-dead-letters",
        type=int,
        default=0,
        help="copies of fraud's message dead-lettered after their order moved on",
    )
    add(
        "--dead-letter-faults",
        type=int,
        default=0,
        help="the dead-letter consumer down, then its database down, then its acks lost, in turn",
    )
    add("--dead-letter-down-seconds", type=float, default=15, help="how long each lasts")
    add(
        "--channel-close-loops",
        type=int,
        default=0,
        help="bursts of closes of the workers' broker connections (prefetched messages return)",
    )
    add("--channel-closes", type=int, default=5, help="closes per burst")
    add(
        "--replays-during-outage",
        type=int,
        default=0,
        help="waiting billing messages dead-lettered, then replayed from admin and CLI at once "
        "during a broker outage",
    )
    add(
        "--same-name-restarts",
        type=int,
        default=0,
        help="a worker lost with its connection half-open, restarted at once under its name "
        "(the broker still holds its remote-control queue)",
    )
    add(
        "--relay-faults",
        type=int,
        default=0,
        help="the relay SIGKILLed and kept down, then paused with SIGSTOP, in turn",
    )
    add("--relay-down-seconds", type=float, default=6, help="how long each lasts")
    add(
        "--receiver-faults",
        type=int,
        default=0,
        help="the webhook receiver every buyer subscribes down, slow past the sender's timeout, "
        "answering 500, then the webhooks worker SIGKILLed with a request out, in turn "
        "(starts a webhooks worker and the receiver)",
    )
    add("--receiver-fault-seconds", type=float, default=5, help="how long each lasts")
    add("--report", type=Path, help="write the figures as JSON here")
    cluster = parser.add_argument_group(
        "cluster run (root only: starts its own RabbitMQ nodes and network namespaces)"
    )
    add = cluster.add_argument
    add(
        "--cluster",
        dest="cluster_nodes",
        type=int,
        default=0,
        help="run on a fresh RabbitMQ cluster of this many nodes instead of CELERY_BROKER_URL",
    )
    add("--hosts", type=int, default=2, help="worker hosts (network namespaces); --workers spread")
    add("--leader-stops", type=int, default=1, help="stops of the node leading a work queue")
    add("--node-stops", type=int, default=1, help="stops of another node")
    add("--host-cuts", type=int, default=1, help="a worker host cut off from the broker")
    add(
        "--majority-losses",
        type=int,
        default=0,
        help="all nodes but one stopped at once: quorum queues lose their majority",
    )
    add("--node-down-seconds", type=float, default=10, help="how long a stopped node stays down")
    add("--cut-seconds", type=float, default=25, help="how long a host stays cut off")
    add("--cluster-port", type=int, default=5681, help="AMQP port of the first node")
    add("--subnet", default="10.77", help="first two octets of the hosts' private addresses")
    add("--host-prefix", default="ofhost", help="names of the namespaces (and node prefix)")
    args = parser.parse_args(argv)
    if args.broker_restarts is None:
        args.broker_restarts = 0 if args.cluster_nodes else 1
    if args.cluster_nodes and args.broker_restarts:
        parser.error("--broker-restarts restarts a single broker: use --leader-stops/--node-stops")
    if args.cluster_nodes and (
        args.dead_letter_faults
        or args.channel_close_loops
        or args.replays_during_outage
        or args.same_name_restarts
        or args.relay_faults
        or args.receiver_faults
    ):
        parser.error(
            "--dead-letter-faults, --channel-close-loops, --replays-during-outage, "
            "--same-name-restarts, --relay-faults and --receiver-faults are made on one node's "
            "run: run them there"
        )
    if args.majority_losses and not args.cluster_nodes:
        parser.error("--majority-losses needs a cluster (--cluster 3)")
    if args.alarms and args.broker == "url" and not args.cluster_nodes:
        parser.error("--alarms block every client of a node: they need --broker node")
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
    cluster = hosts = node = None
    try:
        with contextlib.ExitStack() as stack:
            if config.cluster_nodes:
                cluster, hosts = start_cluster(config)
                config.broker_url = cluster.url()
            elif config.broker == "node":
                node = start_node(config)
                config.broker_url = node.url()
            else:
                try:
                    config.broker_url = stack.enter_context(
                        own_vhost(config.broker_url, f"orderflow-chaos-{config.seed}")
                    )
                except VhostError as error:
                    print(f"{error}: or run with --broker node", file=sys.stderr)
                    return 2
            return run(config, report_path, cluster=cluster, hosts=hosts, node=node)
    finally:
        if cluster is not None:
            cluster.stop(quiet=True)
            shutil.rmtree(cluster.directory, ignore_errors=True)
        if hosts is not None:
            hosts.destroy()
        if node is not None:
            node.stop()
            shutil.rmtree(node.directory, ignore_errors=True)


def start_node(config: Config):
    """A one-node RabbitMQ of the run's own, on free ports."""
    from .node import PrivateNode, free_node_port

    node = PrivateNode(name=f"chaos{config.seed}", port=free_node_port())
    logging.getLogger("chaos").info("starting a RabbitMQ node of the run's own")
    node.start()
    logging.getLogger("chaos").info(
        "node up: RabbitMQ %s on port %s", node._cluster.version(), node.node.port
    )
    return node


def start_cluster(config: Config):
    """The hosts' namespaces, then the nodes, listening on 127.0.0.1 and the broker address."""
    from .cluster import RabbitCluster
    from .hosts import SimulatedHosts

    hosts = SimulatedHosts(count=config.hosts, prefix=config.host_prefix, subnet=config.subnet)
    cluster = RabbitCluster(
        directory=Path(tempfile.gettempdir()) / f"orderflow-chaos-{config.host_prefix}",
        size=config.cluster_nodes,
        base_port=config.cluster_port,
        prefix=f"{config.host_prefix}rc",
        addresses=("127.0.0.1", hosts.broker_address),
    )
    hosts.create()
    try:
        logging.getLogger("chaos").info("starting a %s-node cluster", config.cluster_nodes)
        cluster.start()
        logging.getLogger("chaos").info("cluster up: RabbitMQ %s", cluster.version())
    except BaseException:
        cluster.stop(quiet=True)
        hosts.destroy()
        raise
    return cluster, hosts


def run(config: Config, report_path: Path | None, *, cluster=None, hosts=None, node=None) -> int:
    admin_url, run_url, database = database_urls(config.database_url, config.seed)
    create_database(admin_url, database)
    os.environ["DATABASE_URL"] = run_url  # the harness reads the run's database directly
    os.environ["CELERY_BROKER_URL"] = config.broker_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "orderflow-chaos-not-a-secret")
    import django

    django.setup()
    from django.core.management import call_command

    from .broker import (
        broker_server_version,
        consumers_on_work_queues,
        queue_depth,
        reset_topology,
    )
    from .invariants import all_hold, check_invariants, fault_table, render_table

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)  # the admin's, as release does
    broker_version = broker_server_version(config.broker_url)
    logging.getLogger("chaos").info("broker: RabbitMQ %s", broker_version)
    busy = consumers_on_work_queues(config.broker_url)
    if busy:
        print(
            f"other consumers are attached to {busy}: stop them first (the run would share its "
            "queues with them)",
            file=sys.stderr,
        )
        return 2
    reset_topology(config.broker_url)
    if cluster is not None:
        from .cluster_run import ClusterChaosRun

        chaos = ClusterChaosRun(
            config,
            admin_url=admin_url,
            run_url=run_url,
            database=database,
            cluster=cluster,
            hosts=hosts,
        )
    else:
        chaos = ChaosRun(
            config,
            admin_url=admin_url,
            run_url=run_url,
            database=database,
            nodes=node._cluster if node is not None else None,
        )
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
        depths = {q: queue_depth(config.broker_url, q) for q in MEASURED_QUEUES}
        checks = check_invariants(
            accepted=chaos.run.accepted,
            queue_depths=depths,
            poison_sent=chaos.run.poison_sent,
            dead_letters=chaos.run.made,
            workers=chaos.worker_names,
            workers_not_answering=chaos.workers_not_answering(),
            webhook_requests=chaos.webhook_requests(),
        )
        faults = fault_table(
            windows=chaos.run.windows,
            made=chaos.run.made,
            accepted_at=chaos.run.accepted_at,
            started_wall=chaos.run.started_wall,
        )
        if cluster is not None:
            from .cluster_run import ELECTION_LIMIT_SECONDS
            from .invariants import quorum_checks

            queues, statuses = chaos.quorum_state()
            checks += quorum_checks(
                nodes=[node.name for node in cluster.nodes],
                queues=queues,
                statuses=statuses,
                node_stops=chaos.elections,
                election_limit=ELECTION_LIMIT_SECONDS,
            )
    finally:
        chaos.stop_system()

    summary = summarize(chaos.run, config)
    if cluster is not None:
        summary["node_stops"] = chaos.elections
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
    print()
    print(render_fault_table(faults))
    summary["fault_kinds"] = faults
    summary["broker"] = broker_version
    if report_path:
        summary["invariants"] = [
            {"name": c.name, "figure": c.figure, "ok": c.ok, "problems": c.problems} for c in checks
        ]
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if all_hold(checks) else 1


def render_fault_table(rows: list[dict]) -> str:
    """Per fault kind: fired, orders in flight, lost, charged twice, stuck, dead letters."""
    header = ("fault kind", "fired", "orders", "lost", "charged 2x", "stuck", "dead letters")
    lines = [header] + [
        (
            row["fault"],
            str(row["fired"]),
            str(row["orders"]),
            str(row["lost"]),
            str(row["charged_twice"]),
            str(row["stuck"]),
            f"{row['dead_letters_recorded']} / {row['dead_letters_expected']}",
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
