"""API throttles: DRF's throttle classes over a fixed-window counter in the database.

DRF's own throttles keep each client's request times as a list in Django's cache and rewrite
it on every request. Measured with `python -m bench throttle`, that cost 28% of the order
API's throughput with the database cache and 19% with Redis; this costs 3-6%
(docs/benchmarks/README.md). Each request is one upsert on a counter shared by every process
and host. The price is DRF's sliding window: a client may send up to twice its rate across
the boundary of two windows.
"""

import time
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection
from rest_framework import throttling

from ..models import ApiRequestCount

# One statement, atomic under concurrency; PostgreSQL and SQLite (3.35+) both take it.
COUNT = """
    INSERT INTO {table} ("key", "window_start", "count")
    SELECT %s, %s, 1 {source}
    ON CONFLICT ("key", "window_start")
    DO UPDATE SET "count" = {table}."count" + 1
    RETURNING "count"
"""
# On PostgreSQL the statement's own transaction commits without waiting for the disk: a
# counter lost in a crash costs nothing, and the wait doubled the flushes of an order's POST.
# Only when the statement is its own transaction: inside another (ATOMIC_REQUESTS, say), the
# setting would hold for that transaction's commit too, and an order must never be lost.
SOURCES = {"postgresql": "FROM (SELECT set_config('synchronous_commit', 'off', true)) AS quick"}


def client_address(request) -> str:
    """The client's address as the anonymous throttle keys on it: X-Forwarded-For as the
    API_TRUSTED_PROXIES (DRF's NUM_PROXIES) proxies wrote it, else the peer's address.
    Login throttling (django-axes) counts failures per this address too."""
    return throttling.BaseThrottle().get_ident(request)


class FixedWindowThrottle(throttling.SimpleRateThrottle):
    """DRF's rate parsing, client identity and Retry-After; counting per fixed window."""

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        now = time.time()
        window_start = now - now % self.duration
        window = datetime.fromtimestamp(window_start, tz=UTC)
        count = self._count(key, window)
        if count == 1:  # the first request of a new window: drop this scope's ended windows
            # (only this scope's: another's may be longer, an hour while this is a minute).
            scope_prefix = self.cache_format % {"scope": self.scope, "ident": ""}
            ApiRequestCount.objects.filter(
                key__startswith=scope_prefix, window_start__lt=window
            ).delete()
        self.seconds_left = window_start + self.duration - now
        return count <= self.num_requests

    def wait(self) -> float:
        return self.seconds_left

    @staticmethod
    def _count(key: str, window_start: datetime) -> int:
        with connection.cursor() as cursor:
            source = "" if connection.in_atomic_block else SOURCES.get(connection.vendor, "")
            sql = COUNT.format(table=ApiRequestCount._meta.db_table, source=source)
            cursor.execute(sql, [key[:200], window_start])
            return cursor.fetchone()[0]


class UserRateThrottle(FixedWindowThrottle, throttling.UserRateThrottle):
    """Each signed-in user: API_THROTTLE_USER_RATE (read per request, so tests may change it)."""

    def get_rate(self) -> str | None:
        return settings.API_THROTTLE_USER_RATE


class AnonRateThrottle(FixedWindowThrottle, throttling.AnonRateThrottle):
    """Each anonymous client address: API_THROTTLE_ANON_RATE."""

    def get_rate(self) -> str | None:
        return settings.API_THROTTLE_ANON_RATE
