"""A chaos run on a RabbitMQ cluster, with the workers on simulated hosts.

The web process, the relay and the dead-letter consumer run on this machine and reach the
cluster on 127.0.0.1; each worker runs in a host's network namespace and reaches it on the
broker address (chaos.hosts), both through a failover URL naming all three nodes. Every
process reaches PostgreSQL through one TCP proxy on the database address, which the
namespaces can reach and the database faults can cut.

Faults on top of the single-broker run's: stop the node that leads a work queue, stop another
node, each for a while, then start it again (one node down at a time, so a majority stays up);
cut a host off from the broker mid-load and reconnect it.
"""

import logging
import os
import time
from urllib.parse import urlsplit, urlunsplit

from celery.utils.nodenames import host_format

from .cluster import ClusterError, RabbitCluster
from .faults import BrokerControl
from .hosts import SimulatedHosts
from .processes import (
    ManagedProcess,
    celery_worker_argv,
    gunicorn_argv,
    relay_and_dead_letter_consumer,
    start_and_wait_until_ready,
)
from .proxy import TcpProxy, free_port
from .run import ChaosRun

logger = logging.getLogger("chaos")

# A quorum queue must have a leader again within this after a node stops.
ELECTION_LIMIT_SECONDS = 30
# The queues whose replicas are compared entry by entry (quorum_status) at the end.
CHECKED_QUEUES = ("fraud", "billing", "dead_letter")


class ClusterChaosRun(ChaosRun):
    def __init__(self, *args, cluster: RabbitCluster, hosts: SimulatedHosts, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.cluster = cluster
        self.hosts = hosts
        self.elections: list[dict] = []  # per node stop: seconds until every queue had a leader
        self.last_stopped: str | None = None

    # --- the system ---------------------------------------------------------------------

    def start_system(self) -> None:
        db = urlsplit(self.run_url)
        self.db_proxy = TcpProxy(
            (db.hostname or "127.0.0.1", db.port or 5432), host=self.hosts.database_address
        ).start()
        self.db_proxies = [self.db_proxy]
        credentials = db.netloc.rsplit("@", 1)[0]
        proxied_db = urlunsplit(
            db._replace(netloc=f"{credentials}@{self.hosts.database_address}:{self.db_proxy.port}")
        )
        env = {
            **os.environ,
            "DATABASE_URL": proxied_db,
            "CELERY_BROKER_URL": self.cluster.url("127.0.0.1"),
            "DEBUG": "0",
            "SECRET_KEY": "orderflow-chaos-not-a-secret",
            "ALLOWED_HOSTS": "127.0.0.1",
            "LOG_LEVEL": "INFO",
            "BILLING_FAKE_FAILURE_RATE": str(self.config.gateway_failure_rate),
            "BILLING_FAKE_LATENCY_MS": "50",  # so a worker cut off is mid-task
            "RETRY_BASE_SECONDS": "1",
            "RETRY_MAX_SECONDS": "8",
            "BROKER_CONNECTION_TIMEOUT": "1",
            # A host cut off is given up within ~20 s and its unacked messages redelivered.
            "BROKER_HEARTBEAT": "10",
            "SECURE_SSL_REDIRECT": "0",
        }
        self.env = env
        self.broker_control = BrokerControl([], self.cluster)  # alarms on the cluster's nodes
        worker_env = {**env, "CELERY_BROKER_URL": self.cluster.url(self.hosts.broker_address)}
        port = free_port()
        log_dir = self.config.log_dir
        self.web = ManagedProcess(
            "web", gunicorn_argv(port=port, extra=("--timeout", "60")), env, log_dir
        )
        self.workers = []
        self.worker_names = []
        for n in range(self.config.workers):
            host = self.hosts.hosts[n % len(self.hosts.hosts)]
            hostname = f"{host.name}-w{n}@%h"
            argv = celery_worker_argv(hostname=hostname)
            self.worker_names.append(host_format(hostname))  # the hosts share one UTS namespace
            self.workers.append(
                ManagedProcess(
                    f"{host.name}-worker{n}", self.hosts.argv(host, argv), worker_env, log_dir
                )
            )
        self.relay, self.deadletters = relay_and_dead_letter_consumer(env, log_dir)
        self.processes = [self.web, *self.workers, self.relay, self.deadletters]
        start_and_wait_until_ready(
            web=self.web,
            workers=self.workers,
            others=[self.relay, self.deadletters],
            worker_timeout=120,
        )
        self.base_url = f"http://127.0.0.1:{port}"
        logger.info("system up: %s on a %s-node cluster", self.base_url, len(self.cluster.nodes))

    def stop_system(self) -> None:
        for process in getattr(self, "processes", []):
            process.stop()
        if getattr(self, "db_proxy", None) is not None:
            self.db_proxy.cut()

    # --- faults -------------------------------------------------------------------------

    def schedule(self) -> list[tuple[int, str]]:
        """The single-broker faults, plus the cluster's, drawn in the middle of the load."""
        events = super().schedule()
        cluster_events = (
            ["leader_stop"] * self.config.leader_stops
            + ["node_stop"] * self.config.node_stops
            + ["host_cut"] * self.config.host_cuts
            + ["majority_loss"] * self.config.majority_losses
        )
        events += [
            (self.rng.randint(self.config.orders // 5, self.config.orders * 6 // 10), event)
            for event in cluster_events
        ]
        return sorted(events)

    def fire(self, event: str) -> str:
        if event == "leader_stop":
            queue = self.rng.choice(["fraud", "billing"])
            leader = self.cluster.quorum_queues()[queue]["leader"]
            self.stop_and_restart(leader, why=f"leader of {queue}")
        elif event == "node_stop":
            others = [n.name for n in self.cluster.nodes if n.name != self.last_stopped]
            self.stop_and_restart(self.rng.choice(others), why="another node")
        elif event == "host_cut":
            host = self.rng.choice(self.hosts.hosts)
            self.hosts.cut_from_broker(host)
            self.run.log_fault(f"{host.name} cut off from the broker")
            time.sleep(self.config.cut_seconds)
            self.hosts.reconnect(host)
            self.run.log_fault(f"{host.name} reconnected after {self.config.cut_seconds:.0f} s")
        elif event == "majority_loss":
            self.lose_majority()
        else:
            return super().fire(event)
        return event

    def lose_majority(self) -> None:
        """Every node but one stopped at once: no quorum queue can confirm a publish or deliver
        until they are back, so publishers time out and the outbox holds what they wrote."""
        stopped = self.cluster.nodes[1:]
        for node in stopped:
            self.cluster.stop_node(node)
        names = ", ".join(node.name for node in stopped)
        self.run.log_fault(f"stopped {names}: the quorum queues lost their majority")
        time.sleep(self.config.node_down_seconds)
        # One after another, each joining the node that stayed up. Started together, two
        # booting nodes can ask each other for their cluster state: RabbitMQ 4.0 then fails
        # one's boot (node_not_running in check_cluster_consistency), seen here once.
        for node in stopped:
            self.cluster.start_node(node)
        started = time.monotonic()
        led = self._wait(lambda queues: all(q["leader"] for q in queues))
        self.run.log_fault(
            f"started {names} again after {self.config.node_down_seconds:.0f} s; every queue led "
            f"again in {None if led is None else round(led - started, 1)} s"
        )

    def stop_and_restart(self, name: str, *, why: str) -> None:
        """Stop a node, time the elections of new leaders, start it again, time its rejoin."""
        node = self.cluster.node_named(name)
        self.cluster.stop_node(node)
        self.last_stopped = name
        self.run.log_fault(f"stopped {name} ({why})")
        stopped = time.monotonic()
        elected = self._wait(lambda queues: all(q["leader"] not in ("", name) for q in queues))
        election = {
            "node": name,
            "why": why,
            "leaders_elected_s": None if elected is None else round(elected - stopped, 1),
        }
        time.sleep(max(0.0, self.config.node_down_seconds - (time.monotonic() - stopped)))
        self.cluster.start_node(node)
        started = time.monotonic()
        rejoined = self._wait(lambda queues: all(name in q["online"] for q in queues))
        election["replicas_online_s"] = None if rejoined is None else round(rejoined - started, 1)
        self.elections.append(election)
        self.run.log_fault(
            f"started {name} again after {started - stopped:.0f} s down; leaders elected in "
            f"{election['leaders_elected_s']} s, its replicas online in "
            f"{election['replicas_online_s']} s"
        )

    def _wait(self, done, timeout: float = ELECTION_LIMIT_SECONDS * 2) -> float | None:
        """When done(quorum queues) first held, polled; None if not within the timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if done(self.cluster.quorum_queues().values()):
                    return time.monotonic()
            except ClusterError as error:
                logger.info("cluster not answering yet: %s", error)
            time.sleep(0.5)
        return None

    # --- the cluster's own state after the run ------------------------------------------

    def quorum_state(self, timeout: float = 60) -> tuple[dict, dict]:
        """Every quorum queue's leader and members, and the checked queues' member rows.

        Followers may trail the leader by a few entries for a moment: poll until their
        commit indexes agree, or the timeout.
        """
        deadline = time.monotonic() + timeout
        while True:
            queues = self.cluster.quorum_queues()
            statuses = {name: self.cluster.quorum_status(name) for name in CHECKED_QUEUES}
            caught_up = all(
                len({row["Commit Index"] for row in rows}) == 1 for rows in statuses.values()
            )
            if caught_up or time.monotonic() > deadline:
                return queues, statuses
            time.sleep(2)
