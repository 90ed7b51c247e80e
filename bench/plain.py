"""The plain implementation: the same job as an ordinary Django + Celery developer writes it.

A DRF `CreateAPIView` that saves the order and its first event, then
`transaction.on_commit(lambda: task.delay(id))`; tasks that read the order, decide with the
same fraud rules and the same fake gateway, and `save()` the status with an event row. Same
business writes as Orderflow, same broker settings (quorum queues on topic exchanges,
publisher confirms, acks_late, prefetch 1, JSON), but no outbox, no message dedup, no row
locks, no state machine checks, no dead-letter bookkeeping: what the guarantees are measured
against. Results are not stored (Orderflow stores none for successes either).

Bench-only: it bypasses ordering's services on purpose. Served by bench.settings (web) and
run by `celery -A bench.plain_worker worker -Q plain_fraud,plain_billing`.
"""

from django.db import transaction
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing.errors import PaymentDeclined
from billing.gateway import get_gateway
from billing.models import Charge
from config.celery import app
from fraud.models import FraudAssessment
from fraud.services import assess
from messaging.topology import work_queue
from ordering.api.serializers import OrderCreateInputSerializer, OrderSerializer
from ordering.models import Order, OrderEvent
from ordering.state_machine import OrderStatus

QUEUES = ("plain_fraud", "plain_billing")
CREATED = "created (plain)"  # the first event's cause: tells its orders from Orderflow's
# Publishers name the queue itself: the app's routes are Orderflow's, and a process that has
# published before (the bench) has built its routing table already. bench/plain_worker.py
# adds them to the worker's queues.
FRAUD, BILLING = (work_queue(name) for name in QUEUES)


def create_order(*, buyer, **fields) -> Order:
    with transaction.atomic():
        order = Order.objects.create(
            buyer=buyer, total_minor=fields["quantity"] * fields["unit_price_minor"], **fields
        )
        OrderEvent.objects.create(
            order=order, to_status=order.status, cause=CREATED, version=order.version
        )
        transaction.on_commit(lambda: screen_order.apply_async((str(order.id),), queue=FRAUD))
    return order


class PlainCreateView(generics.CreateAPIView):
    serializer_class = OrderCreateInputSerializer

    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        order = create_order(buyer=request.user, **serializer.validated_data)
        return Response(OrderSerializer(order).data, status=status.HTTP_201_CREATED)


def _move(order: Order, to: str, cause: str) -> None:
    current, order.status = order.status, to
    order.version += 1
    order.save()
    OrderEvent.objects.create(
        order=order, from_status=current, to_status=to, cause=cause, version=order.version
    )


@app.task(name="plain.screen_order", acks_late=True, ignore_result=True)
def screen_order(order_id: str) -> None:
    order = Order.objects.get(pk=order_id)
    assessment = assess(order)
    FraudAssessment.objects.create(
        order=order, verdict=assessment.verdict, score=assessment.score, reasons=assessment.reasons
    )
    if assessment.approved:
        _move(order, OrderStatus.APPROVED, "fraud screening: passed")
        charge_order.apply_async((order_id,), queue=BILLING)
    else:
        _move(order, OrderStatus.CANCELED_FRAUD, "fraud screening: rejected")


@app.task(name="plain.charge_order", acks_late=True, ignore_result=True)
def charge_order(order_id: str) -> None:
    order = Order.objects.get(pk=order_id)
    charge = Charge.objects.create(
        order=order, amount_minor=order.total_minor, currency=order.currency, attempts=1
    )
    try:
        result = get_gateway().charge(
            idempotency_key=str(order.id),
            amount_minor=order.total_minor,
            currency=order.currency,
            order_ref=str(order.id),
        )
    except PaymentDeclined as declined:
        charge.status, charge.decline_reason = Charge.Status.DECLINED, declined.message[:255]
        charge.save()
        _move(order, OrderStatus.PAYMENT_FAILED, f"billing: {declined.message}")
        return
    charge.status, charge.gateway_reference = Charge.Status.SUCCEEDED, result.reference
    charge.save()
    _move(order, OrderStatus.PROCESSED, f"billing: charged {result.reference}")
