"""Publishing to RabbitMQ through the Celery app, with publisher confirms.

`CELERY_BROKER_URL` may name several nodes of a cluster separated by ';' (kombu failover):
a publish that loses its node is retried once on each other node, and only a confirmed
publish counts. Every publish, of one message or of a batch, ends within
BROKER_PUBLISH_TIMEOUT, confirmed or not.
"""

import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from amqp.exceptions import AMQPError, MessageNacked
from django.conf import settings
from kombu import Connection, Producer
from kombu.exceptions import OperationalError

from config.celery import app
from core import errorreports, tracing
from core.tls import amqp_ssl_options

from . import metrics
from .topology import declare_topology

logger = logging.getLogger(__name__)

# What a publish can raise when the broker is down, restarting, refuses the message (a nack)
# or does not confirm it in time (socket timeouts are OSErrors).
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    AMQPError,
    MessageNacked,
    OSError,
)

_topology_declared = False

NACKED = "refused (nacked) by the broker"


class NotConfirmed(AMQPError):
    """The broker refused (nacked) a message, or did not confirm it within the deadline."""


class Deadline:
    """BROKER_PUBLISH_TIMEOUT from now: each wait of one publish gets what is left of it.

    A broker under a memory or disk alarm accepts connections, then stops reading from a
    connection that publishes (RabbitMQ's connection.blocked, which py-amqp only reports):
    the write lands in the socket buffer and the confirm never comes. Without a deadline the
    publish waits for as long as the alarm lasts.
    """

    def __init__(self, seconds: float | None = None) -> None:
        self.seconds = settings.BROKER_PUBLISH_TIMEOUT if seconds is None else seconds
        self._end = time.monotonic() + self.seconds

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self._end

    def remaining(self) -> float:
        """Seconds left; NotConfirmed once there are none."""
        left = self._end - time.monotonic()
        if left <= 0:
            raise NotConfirmed(self.explain())
        return left

    def explain(self) -> str:
        return f"not confirmed within {self.seconds:g}s (BROKER_PUBLISH_TIMEOUT)"


def broker_nodes(url: str) -> list[str]:
    """The node URLs of a broker URL: one, or several separated by ';' (kombu failover)."""
    return [node.strip() for node in url.split(";") if node.strip()]


def failover_retries() -> int:
    """Retries a publish gets on a connection error: one per other node, none with one node."""
    return len(broker_nodes(app.conf.broker_write_url)) - 1


def send_message(*, task_name: str, message_id: uuid.UUID, kwargs: dict, headers: dict) -> None:
    """Publish one task message and wait for the broker's confirm, within BROKER_PUBLISH_TIMEOUT.

    Connect, write and the confirm wait all share one deadline; past it, or on a nack, a
    BROKER_ERRORS error is raised and the message stays in the outbox for the relay. On an
    error (the node went away, a nack, no confirm in time) the next node of a failover list
    is tried, once per other node, while time is left. The connection a publish failed on is
    dropped, not handed back to the pool as it is: it may be blocked by an alarm or still owe
    a confirm, which the next publish on it would take for its own.
    """
    deadline = Deadline()
    attempts = failover_retries() + 1
    with app.producer_or_acquire() as producer:
        for attempt in range(1, attempts + 1):
            try:
                _connect(producer.connection, deadline)
                with _socket_deadline(producer.connection, deadline):
                    _declare_topology_once(producer.connection)
                    remaining = deadline.remaining()
                    with tracing.continued(headers):  # the trace of what wrote the message
                        app.send_task(
                            task_name,
                            kwargs=kwargs,
                            task_id=str(message_id),
                            headers=errorreports.headers_to_publish(headers),
                            producer=producer,
                            retry=False,
                            timeout=remaining,  # the write (py-amqp basic_publish)
                            confirm_timeout=remaining,  # the confirm (basic_publish_confirm)
                        )
                return
            except BROKER_ERRORS as error:
                _drop(producer.connection)
                if deadline.expired:
                    raise NotConfirmed(f"{deadline.explain()}: {error}") from error
                if _nacked(error):
                    raise NotConfirmed(NACKED) from error
                if attempt == attempts:
                    raise
                producer.connection.maybe_switch_next()
                producer.revive(producer.connection)


@dataclass
class Confirms:
    """What the broker answered for each message of a batch, by message id."""

    confirmed: set[uuid.UUID] = field(default_factory=set)
    failed: dict[uuid.UUID, str] = field(default_factory=dict)  # id -> why not confirmed


def send_messages(messages: Sequence[dict], *, timeout: float | None = None) -> Confirms:
    """Publish task messages in one go, then collect the broker's confirm of each.

    One round trip per batch instead of one per message, on a connection of its own. Each
    item holds task_name, message_id, kwargs and headers. Every message counts on its own:
    an ack confirms it (a `multiple` ack, every earlier one too), a nack refuses it; what has
    neither when the deadline (BROKER_PUBLISH_TIMEOUT unless `timeout`) passes or the
    connection fails is not confirmed. Never raises a broker error: what failed is in the
    result. The relay keeps a BatchPublisher instead, and its connection with it.
    """
    publisher = BatchPublisher()
    try:
        return publisher.send(messages, timeout=timeout)
    finally:
        publisher.close()


class BatchPublisher:
    """One connection and confirm-mode channel, kept from batch to batch (the relay's).

    Connecting, declaring the topology and opening a confirm channel cost more round trips
    than a small batch itself; a relay woken for every commit publishes many small batches.
    After any failure the connection is dropped and the next batch opens a new one.
    """

    def __init__(self) -> None:
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        self._tracker: _ConfirmTracker | None = None
        self._sent = 0  # messages published on the channel: the last delivery tag

    def send(self, messages: Sequence[dict], *, timeout: float | None = None) -> Confirms:
        """As send_messages(), on the kept connection."""
        deadline = Deadline(timeout)
        started = time.perf_counter()
        ids = [message["message_id"] for message in messages]
        tracker = _ConfirmTracker(len(ids))  # replaced once the channel is open
        try:
            self._open(deadline)
            tracker = self._tracker = _ConfirmTracker(len(ids), first_tag=self._sent + 1)
            with _socket_deadline(self._connection, deadline):
                for message in messages:
                    # Each in the trace of what wrote it: a batch mixes many requests' messages.
                    with tracing.continued(message["headers"]):
                        app.send_task(
                            message["task_name"],
                            kwargs=message["kwargs"],
                            task_id=str(message["message_id"]),
                            headers=errorreports.headers_to_publish(message["headers"]),
                            producer=self._producer,
                            retry=False,
                            timeout=deadline.remaining(),
                        )
                    self._sent += 1
                while tracker.unsettled:
                    self._connection.drain_events(timeout=deadline.remaining())
        except BROKER_ERRORS as error:
            self._forget()
            reason = deadline.explain() if deadline.expired else str(error) or repr(error)
        else:
            reason = ""
        confirms = tracker.outcome(ids, unsettled_reason=reason)
        metrics.PUBLISH_BATCH_SIZE.observe(len(ids))
        metrics.PUBLISH_CONFIRM_SECONDS.observe(time.perf_counter() - started)
        metrics.PUBLISHED.labels(publisher="relay").inc(len(confirms.confirmed))
        metrics.NOT_PUBLISHED.labels(publisher="relay").inc(len(confirms.failed))
        return confirms

    def keep_alive(self) -> None:
        """Between batches: send and check heartbeats, so an idle connection stays open (or
        is found dead and dropped before a batch is sent on it)."""
        if self._connection is None:
            return
        try:
            self._connection.heartbeat_check()
        except BROKER_ERRORS:
            self._forget()

    def close(self) -> None:
        if self._connection is not None:
            _close(self._connection)
        self._connection = self._producer = None

    def _open(self, deadline: Deadline) -> None:
        if self._connection is not None and self._connection.connected:
            return
        self._forget()
        # Confirms handled here, not by py-amqp's per-publish wait.
        options = {**app.conf.broker_transport_options, "confirm_publish": False}
        self._connection = app.connection_for_write(transport_options=options)
        _connect(self._connection, deadline)
        with _socket_deadline(self._connection, deadline):
            _declare_topology_once(self._connection)
            channel = self._connection.channel()
            channel.confirm_select()
            channel.events["basic_ack"].add(
                lambda tag, multiple: self._tracker.on_ack(tag, multiple)
            )
            channel.events["basic_nack"].add(
                lambda tag, multiple: self._tracker.on_nack(tag, multiple)
            )
        self._producer = Producer(channel)

    def _forget(self) -> None:
        """Drop the connection without the close handshake (a blocked broker never answers
        it); delivery tags start again at 1 on the next channel."""
        if self._connection is not None:
            _drop(self._connection)
        self._connection = self._producer = None
        self._sent = 0


class _ConfirmTracker:
    """Acks and nacks of one batch on a confirm-mode channel, whose delivery tags run
    first_tag..first_tag + count - 1."""

    def __init__(self, count: int, *, first_tag: int = 1) -> None:
        self.first_tag = first_tag
        self.unsettled = set(range(first_tag, first_tag + count))
        self.acked: set[int] = set()
        self.nacked: set[int] = set()

    def on_ack(self, delivery_tag: int, multiple: bool) -> None:
        self.acked |= self._settle(delivery_tag, multiple)

    def on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self.nacked |= self._settle(delivery_tag, multiple)

    def _settle(self, delivery_tag: int, multiple: bool) -> set[int]:
        tags = {t for t in self.unsettled if t <= delivery_tag} if multiple else {delivery_tag}
        tags &= self.unsettled
        self.unsettled -= tags
        return tags

    def outcome(self, ids: list[uuid.UUID], *, unsettled_reason: str) -> Confirms:
        confirms = Confirms()
        for tag, message_id in enumerate(ids, start=self.first_tag):
            if tag in self.acked:
                confirms.confirmed.add(message_id)
            elif tag in self.nacked:
                confirms.failed[message_id] = NACKED
            else:
                confirms.failed[message_id] = unsettled_reason or "not confirmed"
        return confirms


def _connect(connection: Connection, deadline: Deadline) -> None:
    """Connect, if not connected yet, trying each node once, within the deadline."""
    if connection.connected:
        return
    configured = connection.connect_timeout
    # A pooled connection: its own connect timeout is put back for whoever uses it next.
    connection.connect_timeout = min(configured or deadline.seconds, deadline.remaining())
    try:
        connection.ensure_connection(
            max_retries=failover_retries(),
            interval_start=0,
            interval_step=0,
            interval_max=0,
            timeout=deadline.remaining(),
        )
    finally:
        connection.connect_timeout = configured


@contextmanager
def _socket_deadline(connection: Connection, deadline: Deadline) -> Iterator[None]:
    """Every socket read and write inside waits at most what is left of the deadline.

    py-amqp's own waits without a timeout (a declare's reply, say) keep the socket's. A
    transport without a socket (kombu's filesystem broker, for development) has nothing to
    bound.
    """
    socket_transport = getattr(connection.connection, "transport", None)
    if not hasattr(socket_transport, "having_timeout"):
        yield
        return
    with socket_transport.having_timeout(deadline.remaining()):
        yield


def _nacked(error: BaseException) -> bool:
    # Celery re-raises py-amqp's MessageNacked as kombu's OperationalError.
    return isinstance(error, MessageNacked) or isinstance(error.__cause__, MessageNacked)


def _close(connection: Connection) -> None:
    """Close with the handshake, within BROKER_CONNECTION_TIMEOUT; else just drop it.

    The confirms are in by then: a broker that stops answering now changes none of them.
    """
    try:
        if sock := getattr(getattr(connection.connection, "transport", None), "sock", None):
            sock.settimeout(settings.BROKER_CONNECTION_TIMEOUT)
        connection.release()
    except BROKER_ERRORS:
        _drop(connection)


def _drop(connection: Connection) -> None:
    """Forget a connection without the close handshake; its next use connects afresh."""
    connection.collect()


def _declare_topology_once(connection) -> None:
    """Before a process's first publish: a fresh broker may not have the queues yet."""
    global _topology_declared
    if not _topology_declared:
        declare_topology(connection)
        _topology_declared = True


def broker_ssl(url: str) -> dict | bool:
    """TLS options for a connection to `url` (False for amqp://): what Celery's own
    connections get for the configured URL, for a connection opened to a URL named at call time.
    """
    return amqp_ssl_options(
        url, ca_file=settings.BROKER_SSL_CA_FILE, server_name=settings.BROKER_SSL_SERVER_NAME
    )


def ping_broker(*, timeout: float) -> None:
    """Connect to the configured broker (login and virtual host included), then disconnect.

    For readiness checks: raises a BROKER_ERRORS error when the broker cannot be reached
    within about `timeout` seconds. Reads CELERY_BROKER_URL (this process's role's URL, see
    settings.BROKER_URLS) at call time.
    """
    url = settings.CELERY_BROKER_URL
    with app.connection_for_write(
        url=url, ssl=broker_ssl(url), connect_timeout=timeout
    ) as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0)
