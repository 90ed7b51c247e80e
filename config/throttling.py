"""API throttles: DRF's, with rates from settings read per request and shared counts.

Counts live in Django's default cache (CACHE_URL). The default, a database table, is shared by
every gunicorn worker and host; a per-process cache would multiply each rate by the number
of processes.
"""

from django.conf import settings
from rest_framework import throttling


class UserRateThrottle(throttling.UserRateThrottle):
    """Each signed-in user: API_THROTTLE_USER_RATE."""

    def get_rate(self) -> str | None:
        return settings.API_THROTTLE_USER_RATE


class AnonRateThrottle(throttling.AnonRateThrottle):
    """Each anonymous client address: API_THROTTLE_ANON_RATE."""

    def get_rate(self) -> str | None:
        return settings.API_THROTTLE_ANON_RATE
