"""TLS on loopback: a throwaway CA (the openssl CLI) signs certificates for a private RabbitMQ
node with an amqps listener and a private PostgreSQL cluster with ssl=on.

The servers' certificate is issued for the name `localhost` only (no address), so connecting
to 127.0.0.1 is connecting to a server whose certificate names another host. A second CA,
which signed nothing the servers serve, stands for a CA the client wrongly trusts.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

from chaos.cluster import TlsListener
from chaos.node import PrivateNode, free_node_port

from ..live.postgres import private_postgres

SERVER_NAME = "localhost"


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)  # noqa: S603, S607


def _authority(directory: Path, name: str) -> None:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.pem", "-days", "1", "-subj", f"/CN=Orderflow {name}",
            cwd=directory)  # fmt: skip


@pytest.fixture(scope="package")
def authority(tmp_path_factory) -> Path:
    """ca.pem, which signed server.pem (for SERVER_NAME, key server.key), and stranger.pem,
    a CA that signed nothing here."""
    directory = tmp_path_factory.mktemp("tls")
    _authority(directory, "ca")
    _authority(directory, "stranger")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
            "server.csr", "-subj", f"/CN={SERVER_NAME}", cwd=directory)  # fmt: skip
    (directory / "server.ext").write_text(f"subjectAltName=DNS:{SERVER_NAME}\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "1", "-extfile", "server.ext",
            cwd=directory)  # fmt: skip
    return directory


@pytest.fixture(scope="package")
def tls_broker(authority):
    """A private RabbitMQ node (the run's own server: RABBITMQ_ROOT picks 4.0 under
    ORDERFLOW_RABBITMQ=4) with an amqps listener; one for the package, as a node takes ~10 s."""
    tls = TlsListener(
        ca_file=authority / "ca.pem",
        cert_file=authority / "server.pem",
        key_file=authority / "server.key",
    )
    node = PrivateNode(name="tls", port=free_node_port(), tls=tls)
    node.start()
    try:
        yield node
    finally:
        node.stop()
        # Unlike other private nodes' directories, not kept for the logs: it holds a key.
        shutil.rmtree(node.directory, ignore_errors=True)


@pytest.fixture(scope="package")
def tls_database_port(authority):
    """A private PostgreSQL cluster that accepts TLS (and plain connections: libpq's
    sslmode decides); its port."""
    files = {"server.pem": authority / "server.pem", "server.key": authority / "server.key"}
    with private_postgres(
        settings={"ssl": "on", "ssl_cert_file": "server.pem", "ssl_key_file": "server.key"},
        files=files,
    ) as port:
        yield port
