"""Worker hosts simulated on one machine: network namespaces joined to it by veth pairs.

Layout, for subnet "10.77" and two hosts:

    machine (root namespace)                       host N (namespace <prefix>N)
    lo: 10.77.0.1  the broker nodes listen here    <prefix>Nn: 10.77.N.2/24
        10.77.0.2  the database proxy              default route via 10.77.N.1
    <prefix>Nr: 10.77.N.1/24  <-- veth pair -->

A host reaches the broker and the database only through its veth, so it can be cut off from
the broker alone (a blackhole route to the broker address: packets vanish, as in a network
partition) and reconnected, while the machine's other processes keep using 127.0.0.1.
PostgreSQL listens on 127.0.0.1 only, which no namespace can reach: the harness puts a TCP
proxy on the database address in front of it (chaos.proxy.TcpProxy).
"""

import subprocess
from dataclasses import dataclass


class HostsError(RuntimeError):
    """The namespaces could not be made (needs root, or CAP_NET_ADMIN)."""


@dataclass(frozen=True)
class Host:
    name: str  # the namespace
    number: int
    address: str  # inside the namespace


class SimulatedHosts:
    def __init__(self, *, count: int, prefix: str = "ofhost", subnet: str = "10.77") -> None:
        self.prefix = prefix
        self.subnet = subnet
        self.broker_address = f"{subnet}.0.1"
        self.database_address = f"{subnet}.0.2"
        self.hosts = [
            Host(name=f"{prefix}{n}", number=n, address=f"{subnet}.{n}.2")
            for n in range(1, count + 1)
        ]

    def create(self) -> "SimulatedHosts":
        self.destroy()  # whatever a killed run left behind
        for address in (self.broker_address, self.database_address):
            _ip("addr", "add", f"{address}/32", "dev", "lo")
        for host in self.hosts:
            outside, inside = f"{host.name}r", f"{host.name}n"
            _ip("netns", "add", host.name)
            _ip("link", "add", outside, "type", "veth", "peer", "name", inside, "netns", host.name)
            _ip("addr", "add", f"{self.subnet}.{host.number}.1/24", "dev", outside)
            _ip("link", "set", outside, "up")
            _ip("-n", host.name, "link", "set", "lo", "up")
            _ip("-n", host.name, "addr", "add", f"{host.address}/24", "dev", inside)
            _ip("-n", host.name, "link", "set", inside, "up")
            _ip("-n", host.name, "route", "add", "default", "via", f"{self.subnet}.{host.number}.1")
        return self

    def destroy(self) -> None:
        """Delete the namespaces (their veth pairs go with them) and the two addresses."""
        for host in self.hosts:
            _ip("netns", "del", host.name, check=False)
            _ip("link", "del", f"{host.name}r", check=False)
        for address in (self.broker_address, self.database_address):
            _ip("addr", "del", f"{address}/32", "dev", "lo", check=False)

    def argv(self, host: Host, argv: list[str]) -> list[str]:
        """A command line run inside the host's namespace."""
        return ["ip", "netns", "exec", host.name, *argv]

    def cut_from_broker(self, host: Host) -> None:
        """Packets from the host to the broker vanish (open connections hang, then time out)."""
        _ip("-n", host.name, "route", "add", "blackhole", f"{self.broker_address}/32")

    def reconnect(self, host: Host) -> None:
        _ip("-n", host.name, "route", "del", "blackhole", f"{self.broker_address}/32")


def _ip(*args: str, check: bool = True) -> None:
    result = subprocess.run(  # noqa: S603
        ["ip", *args],  # noqa: S607 - iproute2
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if check and result.returncode != 0:
        raise HostsError(f"ip {' '.join(args)}: {result.stderr.strip()}")
