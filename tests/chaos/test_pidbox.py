"""The harness's pieces for a worker restarted under its name: who answers, a held connection."""

import contextlib
import socket
import threading
import time
from types import SimpleNamespace

from chaos.pidbox import workers_answering
from chaos.proxy import TcpProxy


def app_whose_pings_answer(*replies: list[dict] | Exception) -> SimpleNamespace:
    """An app stand-in whose control.ping answers with `replies` (or raises one), one per
    call, then []."""
    answers = iter(replies)

    def ping(destination, timeout, connection):
        answer = next(answers, [])
        if isinstance(answer, Exception):
            raise answer
        return answer

    return SimpleNamespace(
        control=SimpleNamespace(ping=ping), connection_for_write=contextlib.nullcontext
    )


def test_a_node_whose_first_ping_is_lost_still_counts_as_answering():
    app = app_whose_pings_answer([], [{"w1@h": {"ok": "pong"}}], [{"w2@h": {"ok": "pong"}}])

    assert workers_answering(app, ["w1@h", "w2@h"], timeout=5) == []


def test_a_ping_whose_connection_fails_is_asked_again():
    app = app_whose_pings_answer(ConnectionResetError(104), [{"w1@h": {"ok": "pong"}}])

    assert workers_answering(app, ["w1@h"], timeout=5) == []


def test_the_nodes_that_never_answer_are_named():
    app = app_whose_pings_answer([{"w1@h": {"ok": "pong"}}])

    assert workers_answering(app, ["w1@h", "w2@h", "w3@h"], timeout=1.5) == ["w2@h", "w3@h"]


def test_a_held_connection_stays_open_upstream_after_its_client_is_gone():
    upstream = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    threading.Thread(
        target=lambda: accepted.extend(upstream.accept()[0] for _ in range(2)), daemon=True
    ).start()
    proxy = TcpProxy(upstream.getsockname()).start()
    try:
        held_client = socket.create_connection(("127.0.0.1", proxy.port))
        held_client.sendall(b"before")
        _wait_for(lambda: len(accepted) == 1)
        assert accepted[0].recv(16) == b"before"

        proxy.hold()
        held_client.sendall(b"after")
        held_client.close()  # the client dies; the upstream must not hear of it
        accepted[0].settimeout(1)
        try:
            heard = accepted[0].recv(16)
        except TimeoutError:
            heard = None
        assert heard is None, f"upstream saw {heard!r} (b'' is the close)"

        new_client = socket.create_connection(("127.0.0.1", proxy.port))
        new_client.sendall(b"new")
        _wait_for(lambda: len(accepted) == 2)
        assert accepted[1].recv(16) == b"new"
        new_client.close()
    finally:
        proxy.cut()
        upstream.close()


def _wait_for(condition, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
