"""Addresses where a service is missing: a closed port, and a port that never answers."""

import socket

import pytest

from chaos.proxy import free_port


@pytest.fixture
def closed_port() -> int:
    """Nothing listens here: connecting is refused at once."""
    return free_port()


@pytest.fixture
def silent_port():
    """Accepts TCP connections (the kernel completes them) but never says a word: a hung
    server, or one behind a firewall that lets SYNs through, the case only a timeout ends."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    yield listener.getsockname()[1]
    listener.close()
