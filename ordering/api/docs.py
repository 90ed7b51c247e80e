"""The orders API's OpenAPI description: responses, headers and examples for each endpoint.

Kept apart from the views so they stay thin; drf-spectacular reads these decorators.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)

from core.api.docs import AUTH_AND_THROTTLING, RETRY_AFTER, Conflict, Error, database_unavailable

from ..models import MAX_IDEMPOTENCY_KEY_LENGTH
from .serializers import (
    IDEMPOTENCY_KEY_PATTERN,
    OrderCreateInputSerializer,
    OrderDetailSerializer,
    OrderSerializer,
)

ORDER_ID = "3f1c2d4e-8a6b-4c2d-9e1f-0a1b2c3d4e5f"
ORDER_EXAMPLE = {
    "id": ORDER_ID,
    "status": "PENDING",
    "failed_from": "",
    "product_name": "Espresso cup",
    "quantity": 2,
    "unit_price": "12.50",
    "currency": "EUR",
    "total": "25.00",
    "version": 1,
    "created_at": "2026-11-29T10:00:00Z",
    "updated_at": "2026-11-29T10:00:00Z",
}

HISTORY_EXAMPLE = [
    {"from_status": "", "to_status": "PENDING", "description": "Order placed", "cause": None,
     "message_id": None, "version": 1, "at": "2026-11-29T10:00:00Z"},
    {"from_status": "PENDING", "to_status": "APPROVED", "description": "Approved", "cause": None,
     "message_id": "8b0e7c52-3f0d-4b7e-9a51-2d6f1c9e4a10", "version": 2,
     "at": "2026-11-29T10:00:00.080Z"},
    {"from_status": "APPROVED", "to_status": "PROCESSED", "description": "Paid and processed",
     "cause": None, "message_id": "c4a9e2f1-6b3d-4e8a-8f27-5d1b0a9c3e76", "version": 3,
     "at": "2026-11-29T10:00:00.150Z"},
]  # fmt: skip
# What staff see of the same history: the internal cause of each change as well.
STAFF_CAUSES = ["created", "fraud screening: passed", "billing: charged ch_8f27"]
STAFF_HISTORY_EXAMPLE = [
    event | {"cause": cause} for event, cause in zip(HISTORY_EXAMPLE, STAFF_CAUSES, strict=True)
]

ValidationErrors = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="Invalid input: each bad field (or header) with its messages.",
    examples=[
        OpenApiExample(
            "Bad quantity",
            {"quantity": ["Ensure this value is less than or equal to 1000."]},
            response_only=True,
        )
    ],
)
COMMON = {
    **AUTH_AND_THROTTLING,
    503: database_unavailable(
        "Retry after the Retry-After seconds: a POST with the same Idempotency-Key creates the "
        "order at most once."
    ),
}
NOT_FOUND = {404: OpenApiResponse(Error, description="No such order (or not yours).")}
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN.pattern},
    OpenApiParameter.HEADER,
    description=(
        f"1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters without spaces (a UUID "
        "is a good choice). Repeating a request with the same key and body returns the first "
        "order (200); the same key with another body is 422. After a 503 the same request with the "
        "same key is safe to retry: the order is created at most once."
    ),
)

order_api_docs = extend_schema_view(
    list=extend_schema(
        summary="List your orders",
        description="Newest first. Staff see every buyer's orders.",
        parameters=[RETRY_AFTER],
        responses={
            200: OrderSerializer(many=True),
            400: OpenApiResponse(ValidationErrors.response, description="A bad filter value."),
            404: OpenApiResponse(Error, description="No such page."),
            **COMMON,
        },
        examples=[
            OpenApiExample(
                "One page",
                {"count": 1, "next": None, "previous": None, "results": [ORDER_EXAMPLE]},
                response_only=True,
            )
        ],
    ),
    retrieve=extend_schema(
        summary="One order with its status history",
        description=(
            "Each change in `history` has a `description` meant for the buyer: public and "
            "stable, the same for every order that made that change. It never names fraud "
            "rules, staff members or internal errors. Staff also get the internal `cause`; for "
            "buyers it is null."
        ),
        parameters=[RETRY_AFTER],
        responses={200: OrderDetailSerializer, **NOT_FOUND, **COMMON},
        examples=[
            OpenApiExample(
                "Processed, as the buyer sees it",
                ORDER_EXAMPLE | {"status": "PROCESSED", "version": 3, "history": HISTORY_EXAMPLE},
                response_only=True,
            ),
            OpenApiExample(
                "Processed, as staff see it",
                ORDER_EXAMPLE
                | {"status": "PROCESSED", "version": 3, "history": STAFF_HISTORY_EXAMPLE},
                response_only=True,
            ),
        ],
    ),
    create=extend_schema(
        summary="Place an order",
        description="Saved as PENDING and answered at once; screening and billing follow.",
        request=OrderCreateInputSerializer,
        parameters=[IDEMPOTENCY_KEY, RETRY_AFTER],
        responses={
            201: OrderSerializer,
            200: OpenApiResponse(OrderSerializer, description="A repeat with the same key."),
            400: ValidationErrors,
            413: OpenApiResponse(Error, description="Body over MAX_REQUEST_BODY_BYTES."),
            415: OpenApiResponse(Error, description="Not application/json."),
            422: OpenApiResponse(Error, description="Idempotency-Key reused for another body."),
            **COMMON,
        },
        examples=[
            OpenApiExample(
                "An espresso cup",
                {"product_name": "Espresso cup", "quantity": 2, "unit_price": "12.50"},
                request_only=True,
            ),
            OpenApiExample("Accepted", ORDER_EXAMPLE, response_only=True, status_codes=["201"]),
        ],
    ),
    cancel=extend_schema(
        summary="Cancel a PENDING order",
        request=None,
        parameters=[RETRY_AFTER],
        responses={
            200: OrderSerializer,
            409: OpenApiResponse(Conflict, description="Not PENDING any more."),
            **NOT_FOUND,
            **COMMON,
        },
        examples=[
            OpenApiExample(
                "Canceled", ORDER_EXAMPLE | {"status": "CANCELED", "version": 2}, response_only=True
            )
        ],
    ),
)


def forbid_unknown_fields(result: dict, generator, request, public) -> dict:
    """drf-spectacular hook: request bodies say what StrictSerializer enforces (no extras)."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False
    return result


def ordering_needs_a_key(result: dict, generator, request, public) -> dict:
    """drf-spectacular hook: `?ordering=` is refused like every empty value (filters.py), so
    its schema asks for at least one sort key."""
    for item in result.get("paths", {}).values():
        for parameter in item.get("get", {}).get("parameters", []):
            if parameter["name"] == "ordering" and parameter["schema"].get("type") == "array":
                parameter["schema"]["minItems"] = 1
    return result
