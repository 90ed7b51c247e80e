"""What every operation's OpenAPI description shares: error bodies, auth and throttling, the
503 of a database outage and its Retry-After."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers

# Error bodies: one detail and a code, or a list of messages per field for a 400.
Error = inline_serializer(
    "Error",
    {"detail": serializers.CharField(), "code": serializers.CharField(required=False)},
)
Conflict = inline_serializer(
    "Conflict",
    {
        "detail": serializers.CharField(),
        "code": serializers.CharField(),
        "status": serializers.CharField(required=False),
    },
)
AUTH_AND_THROTTLING = {
    401: OpenApiResponse(Error, description="No or bad credentials."),
    429: OpenApiResponse(Error, description="Throttled: wait for the Retry-After seconds."),
}
RETRY_AFTER = OpenApiParameter(
    "Retry-After", OpenApiTypes.INT, OpenApiParameter.HEADER, response=[429, 503]
)


def database_unavailable(retry: str) -> OpenApiResponse:
    """The 503 of core.api.exceptions (the database failed), with what a retry does."""
    return OpenApiResponse(
        Error,
        description=(
            "The database failed under the request (code `database_unavailable`); nothing was "
            f"saved. {retry}"
        ),
    )
