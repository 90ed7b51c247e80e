"""The webhooks API's OpenAPI description, and how a receiver verifies what it is sent."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view

from core.api.docs import AUTH_AND_THROTTLING, RETRY_AFTER, Conflict, Error, database_unavailable

from .serializers import (
    DeliverySerializer,
    EndpointCreateInputSerializer,
    EndpointSerializer,
    EndpointWithSecretSerializer,
    RotateSecretInputSerializer,
)

SIGNATURE_SCHEME = """
Each event is POSTed as JSON to the endpoint's URL with these headers:

- `Orderflow-Event-Id`: the event's id, the same on every delivery and redelivery of the
  event: deduplicate on it.
- `Orderflow-Event-Type`: e.g. `order.processed`.
- `Orderflow-Delivery-Id`: this delivery (one per event and endpoint).
- `Orderflow-Signature: t=<unix time>,v1=<hex>[,v1=<hex>]`: `v1` is the HMAC-SHA256, keyed
  with the endpoint's secret, of `<t>.<raw body>`. After a secret rotation, a second `v1`
  signed with the old secret is sent until its grace period ends. Accept the request when
  any `v1` matches (compare in constant time) and `t` is within 5 minutes of your clock.

Answer 2xx to take it. 5xx, 408, 429 and timeouts (5 s per read) are retried with
exponential backoff (10 attempts over at most 85 minutes by default), then the delivery
fails; other 4xx and 3xx fail at once.
Redirects are not followed. Events of one order may arrive out of order or more than once:
`data.order.version` orders them.
"""

NOT_FOUND = {404: OpenApiResponse(Error, description="No such object (or not yours).")}
COMMON = {**AUTH_AND_THROTTLING, 503: database_unavailable("Retry after the Retry-After seconds.")}

EVENT_EXAMPLE = {
    "id": "0f8fad5b-d9cb-569f-a165-70867728950e",
    "type": "order.processed",
    "occurred_at": "2026-11-29T10:00:00.150Z",
    "data": {
        "order": {
            "id": "3f1c2d4e-8a6b-4c2d-9e1f-0a1b2c3d4e5f",
            "status": "PROCESSED",
            "failed_from": "",
            "product_name": "Espresso cup",
            "quantity": 2,
            "unit_price": "12.50",
            "currency": "EUR",
            "total": "25.00",
            "version": 3,
            "created_at": "2026-11-29T10:00:00Z",
            "updated_at": "2026-11-29T10:00:00.150Z",
        },
        "previous_status": "APPROVED",
        "description": "Paid and processed",
    },
}

ENDPOINT_EXAMPLE = {
    "id": "c4a9e2f1-6b3d-4e8a-8f27-5d1b0a9c3e76",
    "url": "https://example.com/orderflow/webhooks",
    "description": "",
    "event_types": ["order.payment_failed", "order.processed"],
    "is_active": True,
    "disabled_reason": "",
    "disabled_at": None,
    "consecutive_failures": 0,
    "previous_secret_expires_at": None,
    "created_at": "2026-11-29T09:00:00Z",
    "updated_at": "2026-11-29T09:00:00Z",
}
WITH_SECRET = ENDPOINT_EXAMPLE | {"secret": "whsec_Xq3v...shown-once"}
DELIVERY_EXAMPLE = {
    "id": "8b0e7c52-3f0d-4b7e-9a51-2d6f1c9e4a10",
    "event_id": EVENT_EXAMPLE["id"],
    "event_type": "order.processed",
    "endpoint": ENDPOINT_EXAMPLE["id"],
    "status": "DELIVERED",
    "attempts": 1,
    "last_status_code": 200,
    "last_error": "",
    "last_attempt_at": "2026-11-29T10:00:00.300Z",
    "delivered_at": "2026-11-29T10:00:00.300Z",
    "redelivery_count": 0,
    "created_at": "2026-11-29T10:00:00.150Z",
    "event": EVENT_EXAMPLE,
}
FAILED_EXAMPLE = DELIVERY_EXAMPLE | {
    "status": "FAILED",
    "attempts": 10,
    "last_status_code": 500,
    "last_error": "HTTP 500, refused: Internal Server Error",
    "delivered_at": None,
}


def _example(name: str, value: object, *codes: str) -> OpenApiExample:
    return OpenApiExample(name, value, response_only=True, status_codes=list(codes) or None)


def _page(*results: dict) -> dict:
    return {"count": len(results), "next": None, "previous": None, "results": list(results)}


endpoint_api_docs = extend_schema_view(
    list=extend_schema(
        summary="List your webhook endpoints",
        parameters=[RETRY_AFTER],
        responses={
            200: EndpointSerializer(many=True),
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="A bad page size."),
            404: OpenApiResponse(Error, description="No such page."),
            **COMMON,
        },
        examples=[_example("One endpoint", _page(ENDPOINT_EXAMPLE))],
        tags=["webhooks"],
    ),
    retrieve=extend_schema(
        summary="One webhook endpoint",
        parameters=[RETRY_AFTER],
        responses={200: EndpointSerializer, **NOT_FOUND, **COMMON},
        examples=[_example("Active", ENDPOINT_EXAMPLE)],
        tags=["webhooks"],
    ),
    create=extend_schema(
        summary="Register a webhook endpoint",
        description="The answer shows the endpoint's signing secret, once.\n" + SIGNATURE_SCHEME,
        request=EndpointCreateInputSerializer,
        parameters=[RETRY_AFTER],
        responses={
            201: EndpointWithSecretSerializer,
            409: OpenApiResponse(Conflict, description="WEBHOOK_MAX_ENDPOINTS_PER_OWNER reached."),
            **COMMON,
            400: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="A bad field (messages by field name), or a URL webhooks may not go "
                "to (`detail`): not https, or resolving to a loopback, private, link-local or "
                "metadata address.",
            ),
        },
        examples=[
            OpenApiExample(
                "Processed and failed payments",
                {
                    "url": "https://example.com/orderflow/webhooks",
                    "event_types": ["order.processed", "order.payment_failed"],
                },
                request_only=True,
            ),
            _example("Registered, with its secret", WITH_SECRET, "201"),
        ],
        tags=["webhooks"],
    ),
    disable=extend_schema(
        summary="Stop sending to an endpoint",
        description="Deliveries on their way fail unsent; redeliver them once it is enabled.",
        request=None,
        parameters=[RETRY_AFTER],
        responses={200: EndpointSerializer, **NOT_FOUND, **COMMON},
        examples=[
            _example(
                "Disabled",
                ENDPOINT_EXAMPLE
                | {
                    "is_active": False,
                    "disabled_reason": "disabled by buyer",
                    "disabled_at": "2026-11-29T11:00:00Z",
                },
            )
        ],
        tags=["webhooks"],
    ),
    enable=extend_schema(
        summary="Send to a disabled endpoint again",
        description="Its count of failures starts again from 0. Deliveries that failed while "
        "it was disabled are sent again only when you redeliver them.",
        request=None,
        parameters=[RETRY_AFTER],
        responses={200: EndpointSerializer, **NOT_FOUND, **COMMON},
        examples=[_example("Active again", ENDPOINT_EXAMPLE)],
        tags=["webhooks"],
    ),
    rotate_secret=extend_schema(
        summary="Rotate an endpoint's signing secret",
        description="The answer shows the new secret, once. The old one keeps signing beside it "
        "(a second `v1`) for `grace_hours`.",
        request=RotateSecretInputSerializer,
        parameters=[RETRY_AFTER],
        responses={
            200: EndpointWithSecretSerializer,
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="A bad field."),
            **NOT_FOUND,
            **COMMON,
        },
        examples=[
            OpenApiExample("A day of grace", {"grace_hours": 24}, request_only=True),
            _example(
                "Rotated",
                WITH_SECRET | {"previous_secret_expires_at": "2026-11-30T09:00:00Z"},
            ),
        ],
        tags=["webhooks"],
    ),
)

delivery_api_docs = extend_schema_view(
    list=extend_schema(
        summary="List deliveries to your endpoints",
        description="Newest first; `?status=FAILED` lists those that failed for good.",
        parameters=[RETRY_AFTER],
        responses={
            200: DeliverySerializer(many=True),
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="A bad filter value."),
            404: OpenApiResponse(Error, description="No such page."),
            **COMMON,
        },
        examples=[_example("Delivered and failed", _page(DELIVERY_EXAMPLE, FAILED_EXAMPLE))],
        tags=["webhooks"],
    ),
    retrieve=extend_schema(
        summary="One delivery, with the event it carries",
        parameters=[RETRY_AFTER],
        responses={200: DeliverySerializer, **NOT_FOUND, **COMMON},
        examples=[_example("Delivered", DELIVERY_EXAMPLE)],
        tags=["webhooks"],
    ),
    redeliver=extend_schema(
        summary="Send a delivery again",
        description="For a failed delivery, or a delivered one your receiver lost. The event "
        "keeps its id. Answered at once; the delivery is PENDING until it is sent.",
        request=None,
        parameters=[RETRY_AFTER],
        responses={
            202: DeliverySerializer,
            409: OpenApiResponse(
                Conflict, description="On its way already, or the endpoint is disabled."
            ),
            **NOT_FOUND,
            **COMMON,
        },
        examples=[
            _example(
                "On its way again",
                FAILED_EXAMPLE | {"status": "PENDING", "redelivery_count": 1},
                "202",
            )
        ],
        tags=["webhooks"],
    ),
)
