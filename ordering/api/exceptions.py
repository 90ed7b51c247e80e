"""One place that turns domain errors into HTTP responses: DRF's EXCEPTION_HANDLER.

The API's, so it lives with the API: its table names ordering's errors, which `core/` may
not import. An error no row names is a 400, whichever app raised it.
"""

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from core.errors import ApplicationError

from ..errors import IdempotencyKeyReused, OrderNotCancelable, OrderNotFound

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
