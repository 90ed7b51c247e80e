from django.urls import reverse
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.lookups import UUID_PATTERN

from .. import selectors, services
from ..models import MAX_IDEMPOTENCY_KEY_LENGTH, Order
from .docs import order_api_docs
from .filters import OrderFilter
from .serializers import (
    IDEMPOTENCY_KEY_PATTERN,
    OrderCreateInputSerializer,
    OrderDetailSerializer,
    OrderSerializer,
)


@order_api_docs
class OrderViewSet(viewsets.GenericViewSet):
    """Orders of the signed-in buyer (all orders for staff)."""

    serializer_class = OrderSerializer
    filterset_class = OrderFilter
    lookup_value_regex = UUID_PATTERN

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no user
            return Order.objects.none()
        return selectors.orders_visible_to(user=self.request.user)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(OrderSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        order = selectors.order_for(user=request.user, order_id=pk)
        return Response(OrderDetailSerializer(order, context={"request": request}).data)

    def create(self, request: Request) -> Response:
        payload = OrderCreateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        result = services.create_order(
            buyer=request.user,
            idempotency_key=_idempotency_key(request),
            **payload.validated_data,
        )
        location = request.build_absolute_uri(reverse("order-detail", args=[result.order.pk]))
        return Response(
            OrderSerializer(result.order).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
            headers={"Location": location},
        )

    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        order = selectors.order_for(user=request.user, order_id=pk)
        order = services.cancel_order(order_id=order.pk, actor=request.user)
        return Response(OrderSerializer(order).data)


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not IDEMPOTENCY_KEY_PATTERN.fullmatch(key):
        raise ValidationError(
            {
                "Idempotency-Key": [
                    f"Must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters "
                    "without spaces (a UUID is a good choice)."
                ]
            },
            code="invalid",
        )
    return key
