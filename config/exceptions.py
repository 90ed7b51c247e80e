"""One place that turns domain errors into HTTP responses."""

import logging
import re

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import debug, defaults
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from messaging.errors import ApplicationError
from ordering.errors import IdempotencyKeyReused, OrderNotCancelable, OrderNotFound

logger = logging.getLogger(__name__)

HTTP_STATUS_OF: dict[type[ApplicationError], int] = {
    OrderNotFound: status.HTTP_404_NOT_FOUND,
    OrderNotCancelable: status.HTTP_409_CONFLICT,
    IdempotencyKeyReused: status.HTTP_422_UNPROCESSABLE_ENTITY,
}


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, ApplicationError):
        http_status = next(
            (code for kind, code in HTTP_STATUS_OF.items() if isinstance(exc, kind)),
            status.HTTP_400_BAD_REQUEST,
        )
        body = {"detail": exc.message, "code": _code_of(exc)}
        if http_status != status.HTTP_404_NOT_FOUND:  # a 404 says nothing more
            body.update(exc.extra)
        return Response(body, status=http_status)
    return exception_handler(exc, context)


def _code_of(exc: ApplicationError) -> str:
    name = type(exc).__name__
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 404 for a URL that matches nothing: JSON under /api/, like the API's own."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500: JSON under /api/, so clients can parse every answer."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Server error.", "code": "server_error"}, status=500)
    return defaults.server_error(request)


class SettingsFilter(debug.SafeExceptionReporterFilter):
    """Django's filter of error reports, which also hides connection URLs: DATABASE_URL,
    CELERY_BROKER_URL and CLOUDAMQP_URL carry passwords under names it would show."""

    hidden_settings = re.compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|URL", flags=re.IGNORECASE
    )
