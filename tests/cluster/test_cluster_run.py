"""A bounded chaos run on a three-node RabbitMQ cluster, workers on two simulated hosts.

It starts its own nodes (never the machine's broker) and network namespaces, so it needs root
(or CAP_NET_ADMIN and the rabbitmq user) and Debian's rabbitmq-server: without them it fails,
never skips. Ports, namespace names and the subnet are chosen per run, so two suites on one
machine do not collide.
"""

import os
import socket
import sys

import pytest
from django.db import connection

from chaos.processes import ARTIFACTS, ROOT, run_harness

pytestmark = [pytest.mark.broker, pytest.mark.timeout(600)]


def _free_cluster_port() -> int:
    """A first AMQP port whose node, distribution and epmd ports (chaos.cluster) are all free."""
    for base in range(21000 + os.getpid() % 700 * 10, 29000, 10):
        ports = [*range(base, base + 3), *range(base + 20000, base + 20003), base - 1300]
        try:
            sockets = [socket.create_server(("127.0.0.1", port)) for port in ports]
        except OSError:
            continue
        for sock in sockets:
            sock.close()
        return base
    raise AssertionError("no free ports for a test cluster")


def test_a_cluster_run_with_a_leader_stop_a_host_cut_and_a_majority_lost_loses_nothing():
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}"
            f":{db['PORT'] or 5432}/{db['NAME']}"
        ),
    }
    pid = os.getpid()
    report = ARTIFACTS / "chaos" / "cluster-bounded-run.json"
    bounded_run = [
        "--cluster", "3", "--hosts", "2", "--workers", "2",
        "--orders", "150", "--rate", "3", "--clients", "2",
        "--leader-stops", "1", "--node-stops", "0", "--host-cuts", "1", "--majority-losses", "1",
        "--node-down-seconds", "8", "--cut-seconds", "25",
        "--worker-kills", "1", "--db-faults", "0", "--duplicates", "0.1", "--late", "0.05",
        "--poison", "1", "--seed", "11",
        "--cluster-port", str(_free_cluster_port()),
        "--subnet", f"10.{100 + pid % 100}", "--host-prefix", f"oft{pid % 10000}",
    ]  # fmt: skip

    result = run_harness(
        [sys.executable, "-m", "chaos", *bounded_run, "--report", str(report)],
        cwd=ROOT,
        env=env,
        timeout=560,
    )

    print(result.stdout)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    # The version scripts/test.sh was asked for (ORDERFLOW_RABBITMQ): the nodes run from its root
    # (chaos logs to stderr).
    assert f"cluster up: RabbitMQ {os.environ.get('ORDERFLOW_RABBITMQ', '')}" in result.stderr
    for fault in (
        "leader of",
        "cut off from the broker",
        "reconnected",
        "the quorum queues lost their majority",
        "every queue led again in",
    ):
        assert fault in result.stdout, f"the run did not inject: {fault}"
