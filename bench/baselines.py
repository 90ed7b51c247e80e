"""Baseline views for the benchmarks: what POST /api/orders/ is measured against.

Both validate the request with the same serializer as the real endpoint, so the difference
measured is only in what happens after validation. They exist for `python -m bench` and are
served only by bench.settings, never by config.settings.
"""

import uuid

from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import services as billing_services
from fraud import services as fraud_services
from ordering import selectors as order_selectors
from ordering import services as order_services
from ordering.api.serializers import OrderCreateInputSerializer
from ordering.models import Order


class InsertOnlyView(APIView):
    """The floor: insert the Order row and nothing else (no history event, no outbox row).

    Deliberately bypasses ordering.services: it is what the API would cost if accepting an
    order were a single INSERT.
    """

    def post(self, request: Request) -> Response:
        payload = OrderCreateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        fields = payload.validated_data
        order = Order.objects.create(
            buyer=request.user,
            total_minor=fields["quantity"] * fields["unit_price_minor"],
            **fields,
        )
        return Response({"id": str(order.id)}, status=status.HTTP_201_CREATED)


class SynchronousView(APIView):
    """The design the event-driven pipeline replaces: create, screen and charge in the request.

    The same services the tasks call, one after the other, so the answer waits for the payment
    gateway. Run it with OUTBOX_PUBLISH_ON_COMMIT=False: the outbox rows the services write
    are then never published, and no worker screens or bills the order a second time.
    """

    def post(self, request: Request) -> Response:
        payload = OrderCreateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        order = order_services.create_order(buyer=request.user, **payload.validated_data).order
        fraud_services.screen(order_id=order.id, message_id=uuid.uuid4())
        # A no-op when screening canceled the order: charge() bills only APPROVED orders.
        billing_services.charge(order_id=order.id, message_id=uuid.uuid4())
        order = order_selectors.get_order(order_id=order.id)
        return Response(
            {"id": str(order.id), "status": order.status}, status=status.HTTP_201_CREATED
        )
