"""TLS to the broker: the options an AMQP connection to an amqps:// URL is opened with.

py-amqp, given `amqps://` and no options, checks the certificate chain against the system's
CAs but not the host name, and sends no SNI; kombu's own `ssl_*` URL query parameters are
named for redis and py-amqp refuses them. So every connection the project opens gets these
options instead (Celery's through `broker_use_ssl`): the certificate is required, signed by
BROKER_SSL_CA_FILE's CAs (the system's when unset), and issued for the name in the URL.
"""

import ssl
from urllib.parse import parse_qsl, urlsplit

from django.core.exceptions import ImproperlyConfigured


def amqp_ssl_options(url: str, *, ca_file: str = "", server_name: str = "") -> dict | bool:
    """py-amqp's `ssl` options for `url`, one node or a ';' failover list; False for amqp://.

    The name checked is pinned here rather than left for kombu to fill in: kombu writes the
    first node's name into the options it was given, shared by every later connection, so a
    failover to a node of another name would be checked against the first one's. Nodes of
    different names therefore need `server_name`, the one name all their certificates carry.
    """
    nodes = [urlsplit(node.strip()) for node in url.split(";") if node.strip()]
    schemes = {node.scheme for node in nodes}
    if "amqps" not in schemes:
        return False
    if schemes != {"amqps"}:
        raise ImproperlyConfigured(
            "The broker URL mixes amqps:// and other nodes: TLS to some nodes only is no TLS."
        )
    if any(key.startswith("ssl_") for node in nodes for key, _ in parse_qsl(node.query)):
        raise ImproperlyConfigured(
            "The broker URL has ssl_* query parameters, which py-amqp does not understand: "
            "use BROKER_SSL_CA_FILE (and BROKER_SSL_SERVER_NAME) instead."
        )
    names = {node.hostname for node in nodes}
    if not server_name and len(names) > 1:
        raise ImproperlyConfigured(
            f"The broker's nodes have different names ({', '.join(sorted(map(str, names)))}): "
            "set BROKER_SSL_SERVER_NAME to the name their certificates are issued for."
        )
    return {
        "cert_reqs": ssl.CERT_REQUIRED,
        "ca_certs": ca_file or None,  # None: the system's CAs
        "server_hostname": server_name or names.pop() or "localhost",  # kombu's default host
    }
