"""Where webhooks may go: public addresses only.

Checked when an endpoint is registered and again at every delivery, on the addresses the
name resolves to then; the request goes to the address that was checked (webhooks.sender),
so a name that resolves to something else a moment later (DNS rebinding) changes nothing.
A name with any refused address is refused whole.
"""

import ipaddress
import socket
from dataclasses import dataclass

import httpx
from django.conf import settings

from .errors import TargetRefused, TargetUnresolvable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata services that are not in a private or link-local range themselves.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack...
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure's wire server: a public address
    )
)


@dataclass(frozen=True)
class Target:
    """A webhook URL and the checked address its request goes to."""

    url: httpx.URL
    address: IPAddress

    @property
    def host(self) -> str:
        return self.url.raw_host.decode("ascii")

    @property
    def connect_url(self) -> httpx.URL:
        """The URL with the checked address in place of the name."""
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return self.url.copy_with(host=host)

    @property
    def host_header(self) -> str:
        """The Host header the name would have had: the port only when not the default."""
        host = self.url.netloc.decode("ascii")
        return host.rsplit("@", 1)[-1]


def parse(url: str) -> httpx.URL:
    """The URL, if its form may be a webhook target at all; else TargetRefused."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as error:
        raise TargetRefused(f"Not a valid URL: {error}") from None
    if parsed.scheme not in ("https", "http"):
        raise TargetRefused("Use an https:// URL.")
    if not parsed.raw_host:
        raise TargetRefused("The URL has no host.")
    if parsed.userinfo:
        raise TargetRefused("Credentials in the URL are not accepted; verify the signature.")
    if parsed.fragment:
        raise TargetRefused("A URL with a #fragment is not accepted.")
    return parsed


def resolve(url: str) -> Target:
    """Parse, resolve and check a webhook URL: the Target to connect to, or TargetRefused
    (never allowed) or TargetUnresolvable (the name did not resolve)."""
    parsed = parse(url)
    host = parsed.raw_host.decode("ascii")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise TargetUnresolvable(f"The host {host!r} did not resolve: {error}") from None
    addresses = list(
        dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos)
    )
    if not addresses:
        raise TargetUnresolvable(f"The host {host!r} did not resolve.")
    for address in addresses:
        if reason := refusal(address):
            raise TargetRefused(f"The host {host!r} resolves to {address}, {reason}.")
    if parsed.scheme == "http" and not all(_is_loopback(a) for a in addresses):
        raise TargetRefused("Use an https:// URL.")
    return Target(url=parsed, address=addresses[0])


def refusal(address: IPAddress) -> str | None:
    """Why webhooks may not go to `address`; None when they may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # ::ffff:10.0.0.1 reaches 10.0.0.1
    if _is_loopback(address):
        return None if settings.WEBHOOK_ALLOW_LOOPBACK else "a loopback address"
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private address"
    if address.is_multicast or address.is_unspecified or address.is_reserved:
        return "not a public unicast address"
    if not address.is_global:
        return "not a public address"
    return None


def _is_loopback(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback
