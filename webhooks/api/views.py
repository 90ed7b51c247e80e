from datetime import timedelta

from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.lookups import UUID_PATTERN

from .. import selectors, services
from ..models import WebhookDelivery, WebhookEndpoint
from .docs import delivery_api_docs, endpoint_api_docs
from .filters import DeliveryFilter
from .serializers import (
    DeliverySerializer,
    EndpointCreateInputSerializer,
    EndpointSerializer,
    EndpointWithSecretSerializer,
    RotateSecretInputSerializer,
)


@endpoint_api_docs
class EndpointViewSet(viewsets.GenericViewSet):
    """The signed-in user's webhook endpoints."""

    serializer_class = EndpointSerializer
    lookup_value_regex = UUID_PATTERN

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return WebhookEndpoint.objects.none()
        return selectors.endpoints_of(owner=self.request.user)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(EndpointSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        endpoint = selectors.endpoint_of(owner=request.user, endpoint_id=pk)
        return Response(EndpointSerializer(endpoint).data)

    def create(self, request: Request) -> Response:
        payload = EndpointCreateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        endpoint = services.create_endpoint(owner=request.user, **payload.validated_data)
        return Response(EndpointWithSecretSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def disable(self, request: Request, pk: str) -> Response:
        endpoint = selectors.endpoint_of(owner=request.user, endpoint_id=pk)
        endpoint = services.disable_endpoint(
            endpoint_id=endpoint.pk, reason=f"disabled by {request.user}"
        )
        return Response(EndpointSerializer(endpoint).data)

    @action(detail=True, methods=["post"])
    def enable(self, request: Request, pk: str) -> Response:
        endpoint = selectors.endpoint_of(owner=request.user, endpoint_id=pk)
        endpoint = services.enable_endpoint(endpoint_id=endpoint.pk)
        return Response(EndpointSerializer(endpoint).data)

    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str) -> Response:
        payload = RotateSecretInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        endpoint = selectors.endpoint_of(owner=request.user, endpoint_id=pk)
        hours = payload.validated_data.get("grace_hours")
        endpoint = services.rotate_secret(
            endpoint_id=endpoint.pk, grace=None if hours is None else timedelta(hours=hours)
        )
        return Response(EndpointWithSecretSerializer(endpoint).data)


@delivery_api_docs
class DeliveryViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Deliveries to the signed-in user's endpoints; `?status=FAILED` for the failed ones."""

    serializer_class = DeliverySerializer
    filterset_class = DeliveryFilter
    lookup_value_regex = UUID_PATTERN

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return WebhookDelivery.objects.none()
        return selectors.deliveries_of(owner=self.request.user)

    def retrieve(self, request: Request, pk: str) -> Response:
        delivery = selectors.delivery_of(owner=request.user, delivery_id=pk)
        return Response(DeliverySerializer(delivery).data)

    @action(detail=True, methods=["post"])
    def redeliver(self, request: Request, pk: str) -> Response:
        delivery = selectors.delivery_of(owner=request.user, delivery_id=pk)
        delivery = services.redeliver(delivery_id=delivery.pk, actor=request.user)
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
