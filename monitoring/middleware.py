"""HTTP requests counted and timed, by view name: what the router's logs would otherwise tell."""

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "orderflow_http_requests_total",
    "HTTP requests answered, by method, view name and status code.",
    ["method", "view", "status"],
)
REQUEST_SECONDS = Histogram(
    "orderflow_http_request_duration_seconds",
    "Time from a request entering Django to its response, by view name.",
    ["view"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# Anything else a client sends is "other": a label value must never come from the client.
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


class RequestMetricsMiddleware:
    """Outermost, so a refused request (413, 404) counts too."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        # The URL pattern's name, a fixed set; never the path, which carries order ids.
        match = request.resolver_match
        view = (match.view_name or "unnamed") if match else "unmatched"
        method = request.method if request.method in METHODS else "other"
        REQUESTS.labels(method=method, view=view, status=str(response.status_code)).inc()
        REQUEST_SECONDS.labels(view=view).observe(time.perf_counter() - started)
        return response
