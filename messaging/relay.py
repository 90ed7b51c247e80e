"""The relay: publishes the outbox, woken by PostgreSQL as soon as a transaction commits rows.

A trigger on the outbox table (migrations 0005, 0006) sends NOTIFY on NOTIFY_CHANNEL, naming
the row's lane, for every row written unpublished; PostgreSQL delivers it only when that
transaction commits, so the relay never wakes for a row it cannot see yet. A relay publishes
its lanes only (messaging.topology: the main lane, webhook deliveries) and sleeps through
the others' commits. The relay LISTENs on a connection of its own,
publishes everything due in batches on one kept broker connection (one confirm wait per
batch), and falls back to polling every `interval` seconds: a missed notification (the
listening connection was down) delays a message, never loses it. Any number of relays may
run: rows are locked with SKIP LOCKED, so each row goes out from one of them.
"""

import contextlib
import logging
import time
from collections.abc import Callable, Collection
from datetime import timedelta

import psycopg
from django.db import DatabaseError, InterfaceError, close_old_connections, connection

from .broker import BatchPublisher
from .outbox import publish_pending

logger = logging.getLogger("messaging.relay")

NOTIFY_CHANNEL = "orderflow_outbox"  # also in migrations/0005_outbox_notify.py

# A database gone (DatabaseError) or a connection it closed under us (InterfaceError): the
# pass is retried, and the next one checks the connection first.
DatabaseErrors = (DatabaseError, InterfaceError)


class Wakeups:
    """LISTEN on NOTIFY_CHANNEL; wait() returns at the first notification for one of `lanes`
    (any, when None) or the timeout.

    A database without LISTEN (SQLite, for development) or a listening connection that
    fails makes wait() a plain sleep; the next call tries to listen again.
    """

    def __init__(self, lanes: Collection[str] | None = None) -> None:
        self._listener = None
        self._lanes = None if lanes is None else frozenset(lanes)

    def wait(self, timeout: float) -> bool:
        """Until a notification arrives (True) or `timeout` seconds pass (False)."""
        started = time.monotonic()
        try:
            listener = self._listen()
            if listener is None:
                time.sleep(timeout)
                return False
            woken = False
            while not woken and (left := timeout - (time.monotonic() - started)) > 0:
                woken = any(self._mine(n) for n in listener.notifies(timeout=left, stop_after=1))
            # Notifications of the same commits queued meanwhile: one pass publishes them all.
            for _ in listener.notifies(timeout=0):
                pass
            return woken
        except psycopg.Error as error:  # the listening connection failed: poll until it is back
            logger.warning("relay: not listening for commits, polling: %s", error)
            self.close()
            time.sleep(max(0.0, timeout - (time.monotonic() - started)))
            return False

    def _mine(self, notification) -> bool:
        return self._lanes is None or notification.payload in self._lanes

    def close(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(psycopg.Error):  # closing one that may have failed
                self._listener.close()
        self._listener = None

    def _listen(self):
        if self._listener is not None and not self._listener.closed:
            return self._listener
        if connection.vendor != "postgresql":
            return None
        listener = connection.get_new_connection(connection.get_connection_params())
        listener.autocommit = True
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        self._listener = listener
        return listener


def run(
    *,
    interval: float,
    lanes: Collection[str] | None = None,
    batch: int,
    min_age: float,
    gather: float = 0.0,
    once: bool = False,
    stopping: Callable[[], bool] = lambda: False,
) -> None:
    """Publish what is due in `lanes` (all, when None), then wait for a commit to one of
    them (or `interval`), until `stopping()`.

    A commit that comes less than `gather` seconds after the last pass began waits for the
    rest of that time, so a busy relay publishes a batch per `gather` instead of a pass per
    commit; a commit after a quiet spell is published at once.
    """
    wakeups, publisher = Wakeups(lanes), BatchPublisher()
    logger.info(
        "relay started: lanes=%s interval=%ss batch=%s min_age=%ss",
        ",".join(lanes) if lanes is not None else "all",
        interval,
        batch,
        min_age,
    )
    checked = 0.0
    try:
        while not stopping():
            # Django's connection rules (CONN_MAX_AGE, a health check query) once per interval,
            # not on each of the many passes a busy relay makes; a broken connection between
            # checks fails its pass with a DatabaseError, and the next pass checks.
            if time.monotonic() - checked >= interval:
                close_old_connections()
                checked = time.monotonic()
            began = time.monotonic()
            try:
                published = publish_pending(
                    lanes=lanes,
                    limit=batch,
                    min_age=timedelta(seconds=min_age),
                    publisher=publisher,
                )
            except DatabaseErrors as error:
                logger.warning("relay: database unavailable, retrying: %s", error)
                published, checked = 0, 0.0
            if published:
                logger.debug("relay published %s message(s)", published)
            if published >= batch:
                continue  # more may be waiting
            if once:
                break
            publisher.keep_alive()
            if wakeups.wait(interval) and gather:
                time.sleep(max(0.0, began + gather - time.monotonic()))
                wakeups.wait(0)  # commits of the gathering time: the next pass takes them
    finally:
        wakeups.close()
        publisher.close()
    logger.info("relay stopped")
