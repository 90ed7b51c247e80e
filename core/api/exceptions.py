"""One place that turns domain errors into HTTP responses: DRF's EXCEPTION_HANDLER.

It knows no app: a domain error's kind (core/errors.py) gives its code, and an error of no
kind here is a 400, whichever app raised it.
"""

import logging

from django.conf import settings
from django.db import InterfaceError, OperationalError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

from core.errors import ApplicationError, Conflict, NotFound, Unprocessable

logger = logging.getLogger(__name__)

HTTP_STATUS_OF: dict[type[ApplicationError], int] = {
    NotFound: status.HTTP_404_NOT_FOUND,
    Conflict: status.HTTP_409_CONFLICT,
    Unprocessable: status.HTTP_422_UNPROCESSABLE_ENTITY,
}


# Raised by Django when the database connection is refused, lost or killed under a query.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DATABASE_UNAVAILABLE):
        return _database_unavailable(exc, context)
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


def _database_unavailable(exc: Exception, context: dict) -> Response:
    """A 503 the client may retry, not a 500: the database went away, the request was fine.

    DRF hands every exception a view raises to this handler, and re-raises (a 500) only what
    it answers None for. Whatever the request wrote is gone: its transaction was open on the
    connection that failed, which PostgreSQL rolls back; Django closes that connection and
    opens a new one for the next request. So a retry, with the same Idempotency-Key for a
    POST, creates the order at most once.
    """
    set_rollback()  # an ATOMIC_REQUESTS block, if one is ever used, must not commit either
    request = context.get("request")
    first_line = next(iter(str(exc).strip().splitlines()), "")
    logger.warning(
        "database unavailable under %s %s: %s: %s",
        getattr(request, "method", "?"),
        getattr(request, "path", "?"),
        type(exc).__name__,
        first_line,
    )
    return Response(
        {
            "detail": "The database is unavailable; retry shortly (with the same "
            "Idempotency-Key, if any).",
            "code": "database_unavailable",
        },
        status=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(settings.API_DATABASE_RETRY_AFTER_SECONDS)},
    )


def _code_of(exc: ApplicationError) -> str:
    name = type(exc).__name__
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
