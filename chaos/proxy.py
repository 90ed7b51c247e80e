"""A TCP proxy that a test can cut and restore: a broker outage without stopping the broker."""

import contextlib
import socket
import threading


class TcpProxy:
    """Forwards <host>:<port> (127.0.0.1 unless told) to an upstream address until cut()."""

    def __init__(self, upstream: tuple[str, int], *, host: str = "127.0.0.1") -> None:
        self.upstream = upstream
        self.host = host
        self.port = free_port(host)
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._held: set[socket.socket] = set()
        self._lock = threading.Lock()
        # While set, what clients send is read and dropped, and what the server sends still
        # arrives: a one-way partition (a client whose acks never reach the broker).
        self._dropping_upstream = threading.Event()

    def start(self) -> "TcpProxy":
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self) -> None:
        """Refuse new connections and drop the open ones, as a dead broker would."""
        with self._lock:
            listener, self._listener = self._listener, None
            connections, self._connections = self._connections | self._held, set()
            self._held = set()
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            listener.close()
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def hold(self) -> None:
        """Go silent on the open connections but keep them open: the upstream sees a peer
        that vanished without a FIN (a host lost, a partition) and notices only by heartbeats.
        New connections are forwarded as before."""
        with self._lock:
            self._held |= self._connections
            self._connections = set()

    def restore(self) -> None:
        self._dropping_upstream.clear()
        if self._listener is None:
            self.start()

    def drop_upstream(self) -> None:
        """From now on, until cut(), drop what the clients send; deliver what the server sends.

        The stream a client sends is broken from here on, so the only way out is cut().
        """
        self._dropping_upstream.set()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    server.close()
                    return
                self._connections |= {client, server}
            for source, target, upstream in ((client, server, True), (server, client, False)):
                threading.Thread(
                    target=self._pump, args=(source, target, upstream), daemon=True
                ).start()

    def _pump(self, source: socket.socket, target: socket.socket, upstream: bool) -> None:
        try:
            while data := source.recv(65536):
                if source in self._held or (upstream and self._dropping_upstream.is_set()):
                    continue
                target.sendall(data)
        except OSError:
            pass
        finally:
            # A held connection is left open, for its far side to give up.
            for sock in () if source in self._held else (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
