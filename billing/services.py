"""Billing: charge an APPROVED order once and move it to PROCESSED or PAYMENT_FAILED."""

import logging
import uuid

from django.db import connection
from django.utils import timezone

from core.errors import TransientError
from ordering import selectors as order_selectors
from ordering import services as order_services
from ordering.state_machine import OrderStatus

from .errors import PaymentDeclined
from .gateway import get_gateway
from .models import Charge

logger = logging.getLogger(__name__)

STEP = "billing.charge_order"  # this step's row in ordering/steps.py


def charge(*, order_id: uuid.UUID, message_id: uuid.UUID) -> None:
    """Charge an APPROVED order: APPROVED -> PROCESSED, or PAYMENT_FAILED when declined.

    The gateway is called outside any transaction (it is a remote service) with the order
    id as idempotency key, so a retry, a redelivery or a replay never charges twice. The
    outcome is applied by ordering's complete_step(), with the Charge's settlement, in one
    transaction. An order that is not APPROVED, or a message already applied, changes nothing.
    """
    order = order_selectors.order_at_step(order_id=order_id, task_name=STEP)
    if order is None:
        return
    charge_row = _start_attempt(order)
    try:
        result = get_gateway().charge(
            idempotency_key=str(order.id),
            amount_minor=charge_row.amount_minor,
            currency=charge_row.currency,
            order_ref=str(order.id),
        )
    except PaymentDeclined as declined:
        _settle(order_id, message_id, outcome=OrderStatus.PAYMENT_FAILED, decline=declined.message)
        return
    except TransientError as error:
        Charge.objects.filter(pk=charge_row.pk).update(last_error=str(error)[:2000])
        raise
    _settle(order_id, message_id, outcome=OrderStatus.PROCESSED, reference=result.reference)


def _start_attempt(order) -> Charge:
    """The order's one Charge, created on the first attempt, its attempts counted: one upsert."""
    table = Charge._meta.db_table
    now = timezone.now()
    values = {
        "order": order.id,
        "amount_minor": order.total_minor,
        "currency": order.currency,
        "status": Charge.Status.PENDING,
        "created_at": now,
        "updated_at": now,
    }
    # Each value as its field writes it, so the statement is the same on every database.
    fields = [Charge._meta.get_field(name) for name in values]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(field.column for field in fields)},"  # noqa: S608 - our table
            " gateway_reference, decline_reason, attempts, last_error)"
            f" VALUES ({', '.join(['%s'] * len(fields))}, '', '', 1, '')"
            f" ON CONFLICT (order_id) DO UPDATE SET attempts = {table}.attempts + 1,"
            " updated_at = EXCLUDED.updated_at RETURNING id, amount_minor, currency",
            [
                field.get_db_prep_value(value, connection)
                for field, value in zip(fields, values.values(), strict=True)
            ],
        )
        charge_id, amount_minor, currency = cursor.fetchone()
    return Charge(id=charge_id, order_id=order.id, amount_minor=amount_minor, currency=currency)


def _settle(
    order_id: uuid.UUID,
    message_id: uuid.UUID,
    *,
    outcome: OrderStatus,
    reference: str = "",
    decline: str = "",
) -> None:
    succeeded = outcome == OrderStatus.PROCESSED
    order_services.complete_step(
        task_name=STEP,
        order_id=order_id,
        message_id=message_id,
        outcome=outcome,
        cause=f"billing: {decline or 'charged ' + reference}",
        record=lambda: Charge.objects.filter(order_id=order_id).update(
            status=Charge.Status.SUCCEEDED if succeeded else Charge.Status.DECLINED,
            gateway_reference=reference,
            decline_reason=decline[:255],
            last_error="",
        ),
    )
