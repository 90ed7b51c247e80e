"""Readiness: is each service this process depends on reachable right now?

Each check runs in its own daemon thread and all share one deadline, so a check that
hangs (a firewall dropping packets, a broker that accepts TCP but never answers) costs at
most READINESS_TIMEOUT_SECONDS and never holds up the answer or the process's exit.
Failures are logged with their cause here; callers see only which check failed.

/readyz is anonymous, so its answer is kept for READINESS_CACHE_SECONDS in each process
(`recent_readiness`): a flood of probes costs each process one database and one broker
connection per window, never one per probe.
"""

import copy
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.utils import load_backend

from messaging.broker import ping_broker

logger = logging.getLogger(__name__)

OK, UNREACHABLE, TIMEOUT = "ok", "unreachable", "timeout"


def ping_database(*, timeout: float) -> None:
    """Open a new connection to the default database and run `SELECT 1`; raise if that fails.

    A new connection, not the request's kept one: the question is whether the database can
    be reached now, and a probe must never leave a broken connection behind for requests.
    """
    settings_dict = copy.deepcopy(connections[DEFAULT_DB_ALIAS].settings_dict)
    if settings_dict["ENGINE"].endswith("postgresql"):
        # libpq's own limit (whole seconds, at least 2), so the thread ends soon after too.
        options = settings_dict.setdefault("OPTIONS", {})
        options["connect_timeout"] = max(2, math.ceil(timeout))
    probe = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, DEFAULT_DB_ALIAS)
    try:
        with probe.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        probe.close()


CHECKS: dict[str, Callable[..., None]] = {"database": ping_database, "broker": ping_broker}


@dataclass(frozen=True)
class Readiness:
    """The outcome of each check by name: "ok", "unreachable" or "timeout"."""

    checks: dict[str, str]

    @property
    def ready(self) -> bool:
        return all(outcome == OK for outcome in self.checks.values())

    @property
    def failing(self) -> list[str]:
        return [name for name, outcome in self.checks.items() if outcome != OK]


def readiness(*, timeout: float) -> Readiness:
    """Run every check at once and wait at most `timeout` seconds for all of them."""
    futures = {name: _in_daemon_thread(check, timeout=timeout) for name, check in CHECKS.items()}
    deadline = time.monotonic() + timeout
    checks = {}
    for name, future in futures.items():
        try:
            error = future.exception(timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            logger.warning("readiness: %s did not answer within %ss", name, timeout)
            checks[name] = TIMEOUT
            continue
        if error is not None:
            logger.warning("readiness: %s unreachable: %r", name, error)
        checks[name] = OK if error is None else UNREACHABLE
    return Readiness(checks=checks)


class RecentReadiness:
    """The last readiness answer, reused for `max_age` seconds from when it was known.

    Per process, on purpose: a shared cache (the database, say) would cost a connection per
    probe, the very thing this spares. One caller at a time runs the checks; callers that
    arrive meanwhile wait for its answer (at most the checks' timeout) instead of starting
    checks of their own. So with W processes a failure shows within max_age + the timeout,
    and a flood costs at most W checks per window.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answer: Readiness | None = None
        self._known_at = -math.inf

    def __call__(self, *, timeout: float, max_age: float) -> Readiness:
        with self._lock:
            if self._answer is None or time.monotonic() - self._known_at >= max_age:
                self._answer = readiness(timeout=timeout)
                self._known_at = time.monotonic()
            return self._answer

    def forget(self) -> None:
        with self._lock:
            self._answer, self._known_at = None, -math.inf


recent_readiness = RecentReadiness()


def _in_daemon_thread(check: Callable[..., None], *, timeout: float) -> Future:
    future: Future = Future()

    def run() -> None:
        try:
            check(timeout=timeout)
        except BaseException as error:  # handed to the caller, who logs it
            future.set_exception(error)
        else:
            future.set_result(None)

    threading.Thread(target=run, name=f"readiness-{check.__name__}", daemon=True).start()
    return future
