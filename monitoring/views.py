"""GET /metrics: the web process's metrics, for a Prometheus that has METRICS_TOKEN.

A plain Django view, like the health endpoints: no DRF authentication or throttling. Without
METRICS_TOKEN set the endpoint does not exist (404), so nothing is exposed by default.
"""

import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core.metrics import scrape_registry

from .collectors import PipelineStateCollector


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """The Prometheus text format; 401 without a bearer token, 403 with a wrong one."""
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404("metrics are off: METRICS_TOKEN is not set")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        response = HttpResponse("a bearer token is required\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    # Constant time, so the answer's timing tells nothing about how much of a guess was right.
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return HttpResponse("wrong token\n", status=403)
    # The database state only here, not on the worker's or relay's port: one scrape target
    # reports it, so sums over targets do not count it twice.
    registry = scrape_registry(PipelineStateCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
