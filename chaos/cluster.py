"""A three-node RabbitMQ cluster on one machine, from Debian's rabbitmq-server package.

Each node runs from its own directory (mnesia, logs, config, Erlang cookie) under a distinct
node name (rc1@localhost...) and ports, as the `rabbitmq` user when started by root, with a
private epmd, so the machine's own RabbitMQ node is never seen, let alone stopped: every
rabbitmqctl call here names its node with -n. The nodes are joined with
`rabbitmqctl join_cluster`.

With RABBITMQ_ROOT set to a Debian root that holds another rabbitmq-server (the Debian 13 one
with RabbitMQ 4.0 that scripts/lib/rabbitmq4.sh makes and `ORDERFLOW_RABBITMQ=4 scripts/test.sh`
names), every node and CLI call runs from that root instead: chrooted, in a mount namespace of
its own where /proc and the cluster's directory are mounted, so nothing stays mounted after.

    python -m chaos.cluster start [--dir DIR] [--port 5681] [--address 10.77.0.1]
    python -m chaos.cluster status [--dir DIR]
    python -m chaos.cluster stop [--dir DIR]

`start` prints the failover broker URL (amqp://...:5681//;amqp://...:5682//;...).
"""

import argparse
import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

RABBITMQ_BIN = Path(os.environ.get("RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))
RABBITMQ_ROOT = os.environ.get("RABBITMQ_ROOT", "")
# In the root's mount namespace: /proc and the cluster directory (at its own path), then chroot.
# sh -c SCRIPT ROOT DIRECTORY USERSPEC ARGV...
_IN_ROOT = (
    'mount -t proc proc "$0/proc" && mkdir -p "$0$1" && mount --bind "$1" "$0$1" && '
    'userspec=$2 && shift 2 && exec chroot ${userspec:+--userspec=$userspec} "$0" "$@"'
)
DEFAULT_DIR = Path(tempfile.gettempdir()) / "orderflow-rabbitmq-cluster"


class ClusterError(RuntimeError):
    """The cluster could not be started, joined or queried."""


@dataclass(frozen=True)
class Node:
    name: str  # rc1@localhost
    port: int  # AMQP
    dist_port: int  # Erlang distribution, between the nodes and for rabbitmqctl
    home: Path

    @property
    def short(self) -> str:
        return self.name.split("@")[0]


@dataclass(frozen=True)
class TlsListener:
    """An amqps listener on each node, at its AMQP port + `port_offset`, serving a certificate
    and key (PEM files, copied into each node's directory) signed by the CA in `ca_file`."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    port_offset: int = 1


class RabbitCluster:
    """The nodes, their directories and the commands that drive them."""

    def __init__(
        self,
        *,
        directory: Path = DEFAULT_DIR,
        size: int = 3,
        base_port: int = 5681,
        prefix: str = "rc",
        addresses: tuple[str, ...] = ("127.0.0.1",),
        epmd_port: int | None = None,
        root: str = RABBITMQ_ROOT,
        tls: TlsListener | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.root = root
        self.tls = tls
        self.addresses = tuple(addresses)
        self.epmd_port = epmd_port or base_port - 1300  # 5681 -> 4381
        self.nodes = [
            Node(
                name=f"{prefix}{n}@localhost",
                port=base_port + n - 1,
                dist_port=base_port + 20000 + n - 1,
                home=self.directory / f"{prefix}{n}",
            )
            for n in range(1, size + 1)
        ]

    # --- saved state, so another process (the CLI's stop) can find the nodes ----------------

    def save(self) -> None:
        state = {
            "size": len(self.nodes),
            "base_port": self.nodes[0].port,
            "prefix": self.nodes[0].short.rstrip("0123456789"),
            "addresses": list(self.addresses),
            "epmd_port": self.epmd_port,
            "root": self.root,
        }
        (self.directory / "cluster.json").write_text(json.dumps(state))

    @classmethod
    def load(cls, directory: Path) -> "RabbitCluster":
        state_file = Path(directory) / "cluster.json"
        if not state_file.exists():
            raise ClusterError(f"no cluster in {directory} (no cluster.json)")
        state = json.loads(state_file.read_text())
        return cls(
            directory=directory,
            size=state["size"],
            base_port=state["base_port"],
            prefix=state["prefix"],
            addresses=tuple(state["addresses"]),
            epmd_port=state["epmd_port"],
            root=state.get("root", ""),
        )

    # --- URLs -----------------------------------------------------------------------------

    def url(self, address: str = "127.0.0.1", nodes: list[Node] | None = None) -> str:
        """The failover URL of the nodes, as every process's CELERY_BROKER_URL."""
        return ";".join(
            f"amqp://guest:guest@{address}:{node.port}//" for node in nodes or self.nodes
        )

    # --- starting and stopping ------------------------------------------------------------

    def start(self, timeout: float = 120) -> None:
        """Start every node from fresh directories and join them into one cluster."""
        self.stop(quiet=True)
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(parents=True)
        cookie = secrets.token_hex(20)
        cli_home = self.directory / "cli"
        cli_home.mkdir()
        _write_cookie(cli_home, cookie)
        (self.directory / "rabbitmq-env.conf").write_text("")  # not /etc's: it pins a name
        for node in self.nodes:
            self._prepare(node, cookie)
        self.save()
        for node in self.nodes:
            self.start_node(node, wait=False)
        for node in self.nodes:
            self.await_node(node, timeout=timeout)
        first, *others = self.nodes
        for node in others:
            self.ctl(node, "stop_app")
            self.ctl(node, "reset")
            self.ctl(node, "join_cluster", first.name)
            self.ctl(node, "start_app")
            self.ctl(node, "await_startup", "--timeout", "60", timeout=90)
        running = self.running_nodes()
        if sorted(running) != sorted(node.name for node in self.nodes):
            raise ClusterError(f"cluster did not form: running nodes {running}")

    def _prepare(self, node: Node, cookie: str) -> None:
        node.home.mkdir()
        for sub in ("mnesia", "log"):
            (node.home / sub).mkdir()
        _write_cookie(node.home, cookie)
        (node.home / "enabled_plugins").write_text("[].\n")
        listeners = "".join(
            f"listeners.tcp.{n} = {address}:{node.port}\n"
            for n, address in enumerate(self.addresses, start=1)
        )
        (node.home / "rabbitmq.conf").write_text(
            listeners
            + self._tls_config(node)
            # Guest from the simulated hosts too: the nodes listen on private addresses only.
            + "loopback_users = none\n"
            + "cluster_partition_handling = pause_minority\n"
            + "log.file.level = info\n"
        )
        if os.geteuid() == 0:
            uid, gid = self._rabbitmq_ids()
            for path in [node.home, *node.home.rglob("*")]:
                os.chown(path, uid, gid)

    def _tls_config(self, node: Node) -> str:
        """The node's amqps listener, with copies of the PEM files in its own directory (the
        only one a node run from RABBITMQ_ROOT sees, and readable by the rabbitmq user)."""
        if self.tls is None:
            return ""
        files = {"cacertfile": "ca.pem", "certfile": "cert.pem", "keyfile": "key.pem"}
        sources = (self.tls.ca_file, self.tls.cert_file, self.tls.key_file)
        for source, name in zip(sources, files.values(), strict=True):
            shutil.copyfile(source, node.home / name)
        (node.home / "key.pem").chmod(0o600)
        return (
            "".join(
                f"listeners.ssl.{n} = {address}:{node.port + self.tls.port_offset}\n"
                for n, address in enumerate(self.addresses, start=1)
            )
            + "".join(f"ssl_options.{key} = {node.home / name}\n" for key, name in files.items())
            # Clients are not asked for certificates: they log in with a password.
            + "ssl_options.verify = verify_none\n"
            + "ssl_options.fail_if_no_peer_cert = false\n"
        )

    def _rabbitmq_ids(self) -> tuple[int, int]:
        """The rabbitmq user the nodes run as: the root's own when they run from one."""
        if not self.root:
            user = pwd.getpwnam("rabbitmq")
            return user.pw_uid, user.pw_gid
        for line in (Path(self.root) / "etc" / "passwd").read_text().splitlines():
            name, _, uid, gid, *_ = line.split(":")
            if name == "rabbitmq":
                return int(uid), int(gid)
        raise ClusterError(f"no rabbitmq user in {self.root}")

    def _command(self, argv: list[str], *, as_rabbitmq: bool) -> list[str]:
        """argv as run on this machine: as `rabbitmq` when root, from the root if there is one."""
        if not self.root:
            if as_rabbitmq and os.geteuid() == 0:
                return ["runuser", "-u", "rabbitmq", "--", *argv]
            return argv
        uid, gid = self._rabbitmq_ids()
        userspec = f"{uid}:{gid}" if as_rabbitmq else ""
        unshare = ["unshare", "--mount", "--propagation", "private"]
        return [*unshare, "sh", "-c", _IN_ROOT, self.root, str(self.directory), userspec, *argv]

    def node_env(self, node: Node) -> dict[str, str]:
        home = node.home
        return {
            "PATH": self._path(),
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": node.name,
            "RABBITMQ_NODE_PORT": str(node.port),
            "RABBITMQ_DIST_PORT": str(node.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "RABBITMQ_CONF_ENV_FILE": str(self.directory / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(home / "advanced.config"),
            "RABBITMQ_PID_FILE": str(home / "rabbit.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(home / "log"),
        }

    def start_node(self, node: Node, *, wait: bool = True, timeout: float = 120) -> None:
        """Start one node's server in the background (its own session), as `rabbitmq`."""
        # Through env(1): runuser would otherwise set HOME (so the cookie) to the user's own.
        argv = [
            "env",
            *(f"{key}={value}" for key, value in self.node_env(node).items()),
            str(RABBITMQ_BIN / "rabbitmq-server"),
        ]
        argv = self._command(argv, as_rabbitmq=True)
        with (node.home / "server.out").open("ab") as out:
            subprocess.Popen(  # noqa: S603 - the package's own server script
                argv,
                cwd=node.home,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        if wait:
            self.await_node(node, timeout=timeout)

    def await_node(self, node: Node, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            result = self.ctl(node, "await_startup", "--timeout", "5", check=False, timeout=30)
            if result.returncode == 0:
                return
            if time.monotonic() > deadline:
                log = node.home / "log" / f"{node.name}.log"
                tail = log.read_text()[-3000:] if log.exists() else ""
                out = (node.home / "server.out").read_text()[-2000:]
                raise ClusterError(f"{node.name} did not start:\n{out}\n{tail}")
            time.sleep(1)

    def stop_node(self, node: Node) -> None:
        """Stop one node's Erlang VM (clients see their connections closed)."""
        self.ctl(node, "stop", timeout=120)

    def stop(self, *, quiet: bool = False) -> None:
        """Stop every node of this cluster (never any other) and its private epmd."""
        for node in self.nodes:
            if node.home.exists():
                result = self.ctl(node, "stop", check=False, timeout=120)
                if result.returncode != 0 and not quiet:
                    print(f"{node.name}: not running", file=sys.stderr)
        subprocess.run(  # noqa: S603
            self._command(["epmd", "-port", str(self.epmd_port), "-kill"], as_rabbitmq=False),
            env={**os.environ, "PATH": self._path()},
            capture_output=True,
            check=False,
            timeout=30,
        )

    # --- looking in ---------------------------------------------------------------------

    def ctl(
        self,
        node: Node,
        *args: str,
        tool: str = "rabbitmqctl",
        check: bool = True,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess:
        """Run a CLI tool against exactly `node` (-n), with the cluster's cookie and epmd."""
        env = {
            "PATH": self._path(),
            "HOME": str(self.directory / "cli"),
            "LANG": "C.UTF-8",
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_CONF_ENV_FILE": str(self.directory / "rabbitmq-env.conf"),
        }
        argv = [str(RABBITMQ_BIN / tool), "-q", "-n", node.name, *args]
        result = subprocess.run(  # noqa: S603
            self._command(argv, as_rabbitmq=False),
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise ClusterError(f"{' '.join(argv)} failed: {result.stdout}{result.stderr}")
        return result

    def _path(self) -> str:
        """PATH for the tools: the root's own directories when they run from one."""
        if self.root:
            return "/usr/sbin:/usr/bin:/sbin:/bin"
        return os.environ.get("PATH", "/usr/bin:/bin")

    def node_named(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def running_nodes(self, via: Node | None = None) -> list[str]:
        for node in [via] if via else self.nodes:
            result = self.ctl(node, "cluster_status", "--formatter", "json", check=False)
            if result.returncode == 0:
                return json.loads(result.stdout)["running_nodes"]
        return []

    def version(self) -> str:
        """The RabbitMQ version the first node reports (3.10.8, 4.0.5...)."""
        return self.ctl(self.nodes[0], "version").stdout.strip()

    def quorum_queues(self, via: Node | None = None) -> dict[str, dict]:
        """Every quorum queue: {name: {"leader", "members", "online"}}, from a running node."""
        last_error = ""
        for node in [via] if via else self.nodes:
            result = self.ctl(
                node,
                "list_queues",
                "name",
                "type",
                "leader",
                "members",
                "online",
                "--formatter",
                "json",
                check=False,
                timeout=30,
            )
            if result.returncode == 0:
                return {
                    row["name"]: {
                        "leader": row.get("leader") or "",
                        "members": sorted(row.get("members") or []),
                        "online": sorted(row.get("online") or []),
                    }
                    for row in json.loads(result.stdout or "[]")
                    if row.get("type") == "quorum"
                }
            last_error = result.stdout + result.stderr
        raise ClusterError(f"no node answered list_queues: {last_error}")

    def quorum_status(self, queue: str, via: Node | None = None) -> list[dict]:
        """One row per member: Node Name, Raft State, Commit Index... (rabbitmq-queues)."""
        last_error = ""
        for node in [via] if via else self.nodes:
            result = self.ctl(
                node,
                "quorum_status",
                queue,
                "--formatter",
                "json",
                tool="rabbitmq-queues",
                check=False,
                timeout=30,
            )
            if result.returncode == 0:
                return json.loads(result.stdout)
            last_error = result.stdout + result.stderr
        raise ClusterError(f"no node answered quorum_status {queue}: {last_error}")


def _write_cookie(home: Path, cookie: str) -> None:
    path = home / ".erlang.cookie"
    path.write_text(cookie)
    path.chmod(0o400)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.cluster", description=__doc__)
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="the nodes' directories")
    parser.add_argument("--size", type=int, default=3, help="nodes")
    parser.add_argument("--port", type=int, default=5681, help="AMQP port of the first node")
    parser.add_argument("--prefix", default="rc", help="node names: <prefix>1@localhost...")
    parser.add_argument(
        "--address",
        action="append",
        default=[],
        help="another address to listen on besides 127.0.0.1 (it must exist); repeatable",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            cluster = RabbitCluster(
                directory=args.dir,
                size=args.size,
                base_port=args.port,
                prefix=args.prefix,
                addresses=("127.0.0.1", *args.address),
            )
            cluster.start()
            print(cluster.url())
            return 0
        cluster = RabbitCluster.load(args.dir)
        if args.command == "stop":
            cluster.stop()
            shutil.rmtree(args.dir, ignore_errors=True)
            return 0
        print("running nodes:", ", ".join(cluster.running_nodes()) or "none")
        for name, queue in sorted(cluster.quorum_queues().items()):
            print(f"{name}: leader {queue['leader']}, online {len(queue['online'])}")
        print(cluster.url())
        return 0
    except ClusterError as error:
        print(error, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
