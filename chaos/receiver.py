"""A webhook receiver on loopback, for the tests and `python -m chaos --receiver-faults`.

It records every request it is sent and answers as it is told: 200, another status, slowly
(past the sender's timeout), not at all (down: its port refuses connections), or a trickle:
the status line, then a header byte at a time, each inside the sender's per-read timeout,
for as long as `delay` (what only a bound on the whole request stops).
"""

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .proxy import free_port

OK, DOWN, SLOW, ERROR, TRICKLE = "ok", "down", "slow", "error", "trickle"
TRICKLE_INTERVAL = 0.5  # seconds between two bytes of a trickled answer


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    status: int  # what it answered (0: it gave no answer in time)


@dataclass
class Receiver:
    port: int = field(default_factory=free_port)
    mode: str = OK
    status: int = 500  # the answer in ERROR mode
    answer: bytes = b"ok"  # the body of every answer
    delay: float = 10.0  # how long SLOW waits before answering
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                mode = receiver.mode
                if mode == TRICKLE:
                    receiver._record(Received(dict(self.headers), body, 0))
                    self._trickle(receiver.delay)
                    return
                if mode == SLOW:
                    time.sleep(receiver.delay)
                status = receiver.status if mode == ERROR else 200
                receiver._record(Received(dict(self.headers), body, 0 if mode == SLOW else status))
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(receiver.answer)))
                    self.end_headers()
                    self.wfile.write(receiver.answer)
                except OSError:
                    pass  # the sender gave up waiting

            def _trickle(self, seconds: float) -> None:
                try:
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Trickle: ")
                    self.wfile.flush()
                    deadline = time.monotonic() + seconds
                    while time.monotonic() < deadline:
                        time.sleep(TRICKLE_INTERVAL)
                        self.wfile.write(b"x")
                        self.wfile.flush()
                except OSError:
                    pass  # the sender hung up, as it should
                self.close_connection = True

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def set(self, mode: str) -> None:
        """OK, SLOW, ERROR or TRICKLE; DOWN closes the port, any other mode opens it again."""
        if mode == DOWN:
            self.stop()
        elif self._server is None:
            self.start()
        self.mode = mode

    def _record(self, received: Received) -> None:
        with self._lock:
            self.received.append(received)

    def taken(self) -> list[Received]:
        """The requests it answered with a 2xx."""
        with self._lock:
            return [r for r in self.received if 200 <= r.status < 300]
