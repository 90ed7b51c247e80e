"""Health endpoints for load balancers and orchestrators: anonymous, JSON, never cached by HTTP.

Plain Django views, not DRF: no authentication, throttling or content negotiation runs, and
/healthz touches neither the database nor the broker. /readyz answers from the process's
recent checks (health.checks.recent_readiness), at most READINESS_CACHE_SECONDS old.
"""

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from .checks import recent_readiness


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process is up and serving requests."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when the database and the broker answer in time, else 503 naming them."""
    result = recent_readiness(
        timeout=settings.READINESS_TIMEOUT_SECONDS, max_age=settings.READINESS_CACHE_SECONDS
    )
    if result.ready:
        return JsonResponse({"status": "ok", "checks": result.checks})
    body = {"status": "unavailable", "failing": result.failing, "checks": result.checks}
    return JsonResponse(body, status=503)
