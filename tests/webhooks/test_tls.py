"""HTTPS to the checked address: TLS verifies the certificate for the URL's name (its SNI),
not for the address the request went to. A throwaway CA made with openssl signs the server."""

import http.server
import socket
import ssl
import subprocess
import threading

import pytest

from webhooks import sender, targets
from webhooks.targets import Target

NAME = "hooks.orderflow.test"


def openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)  # noqa: S603, S607


@pytest.fixture(scope="module")
def authority(tmp_path_factory):
    """A CA, and a certificate it signed for NAME and one for another name."""
    directory = tmp_path_factory.mktemp("ca")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "1", "-subj", "/CN=Orderflow test CA", cwd=directory)  # fmt: skip
    for name in (NAME, "someone-else.test"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                f"{name}.csr", "-subj", f"/CN={name}", cwd=directory)  # fmt: skip
        (directory / f"{name}.ext").write_text(f"subjectAltName=DNS:{name}\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "1", "-extfile",
                f"{name}.ext", cwd=directory)  # fmt: skip
    return directory


class Handler(http.server.BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Handler.seen.append(self.headers.get("Host"))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def https_server(authority, certificate_name: str) -> http.server.HTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(
        authority / f"{certificate_name}.pem", authority / f"{certificate_name}.key"
    )
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def trusting_the_test_ca(authority, monkeypatch):
    """The sender's client, trusting the throwaway CA instead of the system's."""
    context = ssl.create_default_context(cafile=str(authority / "ca.pem"))
    monkeypatch.setattr(sender, "tls_context", lambda: context)


@pytest.fixture
def name_resolving_to_loopback(monkeypatch, settings):
    settings.WEBHOOK_ALLOW_LOOPBACK = True

    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host != NAME:  # the connection itself, to the address checked
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(targets.socket, "getaddrinfo", getaddrinfo)


def post(port: int):
    target: Target = targets.resolve(f"https://{NAME}:{port}/in")
    assert str(target.connect_url).startswith("https://127.0.0.1:")
    return sender.post(target=target, body=b"{}", headers={})


def test_the_certificate_is_verified_for_the_name_while_the_address_is_connected_to(
    authority, trusting_the_test_ca, name_resolving_to_loopback
):
    server = https_server(authority, NAME)
    try:
        answer = post(server.server_address[1])
    finally:
        server.shutdown()

    assert answer.delivered, answer.error
    assert Handler.seen[-1] == f"{NAME}:{server.server_address[1]}"


def test_a_certificate_for_another_name_is_refused(
    authority, trusting_the_test_ca, name_resolving_to_loopback
):
    server = https_server(authority, "someone-else.test")
    try:
        answer = post(server.server_address[1])
    finally:
        server.shutdown()

    assert not answer.delivered
    assert answer.retryable
    assert "connection failed" in answer.error


def test_a_server_signed_by_a_ca_the_sender_does_not_trust_is_refused(
    authority, name_resolving_to_loopback
):
    server = https_server(authority, NAME)  # the throwaway CA: not among certifi's
    try:
        answer = post(server.server_address[1])
    finally:
        server.shutdown()

    assert not answer.delivered
    assert "CERTIFICATE_VERIFY_FAILED" in answer.error


def test_every_request_verifies_with_one_context_made_once(monkeypatch, name_resolving_to_loopback):
    # Loading the CAs for each request cost more CPU than the rest of a delivery.
    contexts = []

    class Recording(sender.httpx.Client):
        def __init__(self, **kwargs):
            contexts.append(kwargs["verify"])
            super().__init__(**kwargs)

    monkeypatch.setattr(sender.httpx, "Client", Recording)
    for port in (1, 2):  # nothing listens there: the connection fails, the client was made
        assert not post(port).delivered

    assert len(contexts) == 2 and contexts[0] is contexts[1]
    assert contexts[0].verify_mode == ssl.CERT_REQUIRED and contexts[0].check_hostname
