"""One private RabbitMQ node that a test or a chaos run may break: alarms, stops, restarts.

Never the machine's own node (other people's tests use it): this one runs from its own
directory, node name, ports, Erlang cookie and epmd, as a one-node `chaos.cluster`, and every
rabbitmqctl call names it with -n.

    with PrivateNode(name="alarm", port=5691) as node:
        url = node.url()
        node.memory_alarm()      # publishers blocked, confirms withheld
        node.clear_alarms()

    python -m chaos.node start --port 5691 [--dir DIR]   # prints its URL
    python -m chaos.node alarm memory|disk|clear --port 5691 [--dir DIR]
    python -m chaos.node stop --port 5691 [--dir DIR]
"""

import argparse
import json
import random
import socket
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from .cluster import ClusterError, Node, RabbitCluster, TlsListener

# What the alarms are set to and cleared back to (RabbitMQ's defaults when cleared).
ALARM_MEMORY_WATERMARK = "0.0000001"  # of the machine's memory: always exceeded
NORMAL_MEMORY_WATERMARK = "0.4"
ALARM_DISK_FREE_LIMIT = "10000000GB"  # more than any disk has free
NORMAL_DISK_FREE_LIMIT = "50MB"


class PrivateNode:
    """A single RabbitMQ node on `port` (distribution on port + 20000)."""

    def __init__(
        self,
        *,
        name: str = "private",
        port: int,
        directory: Path | None = None,
        tls: TlsListener | None = None,
    ) -> None:
        self.directory = Path(directory or default_directory(name, port))
        self._cluster = RabbitCluster(
            directory=self.directory, size=1, base_port=port, prefix=f"{name}-n", tls=tls
        )

    @classmethod
    def load(cls, directory: Path) -> "PrivateNode":
        node = cls.__new__(cls)
        node.directory = Path(directory)
        node._cluster = RabbitCluster.load(directory)
        return node

    @property
    def node(self) -> Node:
        return self._cluster.nodes[0]

    @property
    def name(self) -> str:
        return self.node.name

    def url(self, vhost: str = "") -> str:
        """amqp://guest:guest@127.0.0.1:<port>/<vhost>; the default vhost unless named."""
        return f"amqp://guest:guest@127.0.0.1:{self.node.port}/{vhost}"

    def tls_url(self, host: str = "localhost", vhost: str = "") -> str:
        """amqps://guest:guest@<host>:<TLS port>/<vhost>, for a node started with `tls`."""
        tls = self._cluster.tls
        if tls is None:
            raise ClusterError(f"{self.name} has no TLS listener")
        return f"amqps://guest:guest@{host}:{self.node.port + tls.port_offset}/{vhost}"

    def start(self, timeout: float = 120) -> "PrivateNode":
        """Start from a fresh directory; at once a ClusterError if its ports are taken."""
        ports = (self.node.port, self.node.dist_port)
        if self._cluster.tls is not None:
            ports += (self.node.port + self._cluster.tls.port_offset,)
        deadline = time.monotonic() + 20  # a node just stopped may still hold them briefly
        while (taken := [port for port in ports if _listening(port)]) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.5)
        if taken:
            raise ClusterError(f"{self.name}: ports {taken} already in use (another node?)")
        self._cluster.start(timeout=timeout)
        return self

    def stop(self) -> None:
        self._cluster.stop(quiet=True)

    def ctl(self, *args: str, timeout: float = 60) -> str:
        """rabbitmqctl against this node only; its output."""
        return self._cluster.ctl(self.node, *args, timeout=timeout).stdout

    # --- resource alarms: RabbitMQ blocks every connection that publishes ---------------

    def memory_alarm(self) -> None:
        self.ctl("set_vm_memory_high_watermark", ALARM_MEMORY_WATERMARK)

    def disk_alarm(self) -> None:
        self.ctl("set_disk_free_limit", ALARM_DISK_FREE_LIMIT)

    def clear_alarms(self) -> None:
        self.ctl("set_vm_memory_high_watermark", NORMAL_MEMORY_WATERMARK)
        self.ctl("set_disk_free_limit", NORMAL_DISK_FREE_LIMIT)

    def alarms(self) -> list[str]:
        """The node's active alarms, as `rabbitmq-diagnostics alarms` words them; [] if none."""
        result = self._cluster.ctl(
            self.node, "alarms", "--formatter", "json", tool="rabbitmq-diagnostics", timeout=30
        )
        report = json.loads(result.stdout or "{}")
        return [*report.get("local", []), *report.get("global", []), *report.get("alarms", [])]

    def __enter__(self) -> "PrivateNode":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def default_directory(name: str, port: int) -> Path:
    """Per name and port: two nodes on one machine (two test runs) never share one."""
    return Path(tempfile.gettempdir()) / f"orderflow-node-{name}-{port}"


def free_node_port(low: int = 6000, high: int = 9000) -> int:
    """An AMQP port whose node's other ports (distribution +20000, epmd -1300) are free too."""
    for port in random.sample(range(low, high), 200):
        if not any(_listening(p) for p in (port, port + 20000, port - 1300)):
            return port
    raise ClusterError(f"no free port for a RabbitMQ node between {low} and {high}")


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.node", description=__doc__)
    parser.add_argument("command", choices=["start", "stop", "alarm"])
    parser.add_argument("kind", nargs="?", choices=["memory", "disk", "clear"])
    parser.add_argument("--dir", type=Path, default=None, help="the node's directory")
    parser.add_argument("--port", type=int, default=5691, help="AMQP port")
    parser.add_argument("--name", default="private", help="node name prefix")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            node = PrivateNode(name=args.name, port=args.port, directory=args.dir).start()
            print(node.url())
            return 0
        directory = args.dir or default_directory(args.name, args.port)
        node = PrivateNode.load(directory)
        if args.command == "stop":
            node.stop()
        elif args.kind == "memory":
            node.memory_alarm()
        elif args.kind == "disk":
            node.disk_alarm()
        elif args.kind == "clear":
            node.clear_alarms()
        else:
            parser.error("alarm needs memory, disk or clear")
        return 0
    except ClusterError as error:
        print(error, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
