"""Where webhooks may go: public addresses only, checked on what the name resolves to."""

import ipaddress
import socket

import pytest

from webhooks import targets
from webhooks.errors import TargetRefused, TargetUnresolvable


@pytest.fixture
def resolving_to(monkeypatch):
    """Make every name resolve to the given addresses, as a hostile DNS server could."""

    def resolve(*addresses: str) -> None:
        def getaddrinfo(host, port, *args, **kwargs):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

        monkeypatch.setattr(targets.socket, "getaddrinfo", getaddrinfo)

    return resolve


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.169.254", "metadata"),
        ("169.254.10.10", "link-local"),
        ("fe80::1", "link-local"),
        ("168.63.129.16", "metadata"),
        ("100.100.100.200", "metadata"),
        ("100.64.0.1", "not a public"),
        ("0.0.0.0", ""),  # noqa: S104 - an address to refuse, not one to bind
        ("224.0.0.1", ""),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "metadata"),
    ],
)
def test_private_loopback_link_local_and_metadata_addresses_are_refused(settings, address, why):
    settings.WEBHOOK_ALLOW_LOOPBACK = False

    reason = targets.refusal(ipaddress.ip_address(address))

    assert reason is not None
    assert why in reason


def test_a_public_address_is_allowed(settings):
    settings.WEBHOOK_ALLOW_LOOPBACK = False
    assert targets.refusal(ipaddress.ip_address("93.184.216.34")) is None
    assert targets.refusal(ipaddress.ip_address("2606:2800:220:1::1")) is None


def test_loopback_is_allowed_only_by_the_setting_and_nothing_else_with_it(settings):
    settings.WEBHOOK_ALLOW_LOOPBACK = True

    assert targets.refusal(ipaddress.ip_address("127.0.0.1")) is None
    assert targets.refusal(ipaddress.ip_address("10.0.0.1")) is not None
    assert targets.refusal(ipaddress.ip_address("169.254.169.254")) is not None


def test_a_name_with_any_refused_address_is_refused_whole(settings, resolving_to):
    settings.WEBHOOK_ALLOW_LOOPBACK = False
    resolving_to("93.184.216.34", "10.0.0.7")

    with pytest.raises(TargetRefused, match=r"10\.0\.0\.7, a private address"):
        targets.resolve("https://hooks.example.com/in")


def test_the_request_goes_to_the_checked_address_with_the_name_kept(settings, resolving_to):
    settings.WEBHOOK_ALLOW_LOOPBACK = False
    resolving_to("93.184.216.34")

    target = targets.resolve("https://hooks.example.com:8443/in?x=1")

    assert str(target.connect_url) == "https://93.184.216.34:8443/in?x=1"
    assert target.host == "hooks.example.com"
    assert target.host_header == "hooks.example.com:8443"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "https"),
        ("https://user:pw@example.com/x", "Credentials"),
        ("https:///x", "host"),
        ("https://example.com/x#frag", "fragment"),
    ],
)
def test_urls_of_the_wrong_form_are_refused_before_any_lookup(url, message, monkeypatch):
    monkeypatch.setattr(targets.socket, "getaddrinfo", lambda *a, **k: pytest.fail("looked up"))

    with pytest.raises(TargetRefused, match=message):
        targets.resolve(url)


def test_plain_http_is_refused_to_a_public_address(settings, resolving_to):
    settings.WEBHOOK_ALLOW_LOOPBACK = True
    resolving_to("93.184.216.34")

    with pytest.raises(TargetRefused, match="https"):
        targets.resolve("http://hooks.example.com/in")


def test_plain_http_to_loopback_is_allowed_in_development(settings):
    settings.WEBHOOK_ALLOW_LOOPBACK = True

    assert targets.resolve("http://127.0.0.1:9/in").address == ipaddress.ip_address("127.0.0.1")


def test_a_name_that_does_not_resolve_is_unresolvable_not_refused(settings):
    with pytest.raises(TargetUnresolvable):
        targets.resolve("https://no-such-host.invalid/in")
