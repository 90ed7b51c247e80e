"""The only code that writes orders: create, cancel, and the one guarded transition()."""

import logging
import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from messaging import outbox

from .errors import IdempotencyKeyReused, OrderNotCancelable, OrderNotFound
from .models import Order, OrderEvent
from .state_machine import OrderStatus, can_transition

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TransitionResult:
    order: Order
    applied: bool


@dataclass(frozen=True)
class CreateResult:
    order: Order
    created: bool


def transition(
    *, order_id: uuid.UUID, to: OrderStatus, cause: str, message_id: uuid.UUID | None = None
) -> TransitionResult:
    """Move an order to `to` if the state machine allows it, else change nothing.

    Locks the order row, so concurrent transitions of one order are serialised and exactly
    one of two conflicting ones wins. A refused transition (a duplicate, a late or
    out-of-order message) is logged and returned with `applied=False`; it is not an error.
    Call it inside an outer `transaction.atomic()` to commit other effects with it.
    """
    # No savepoint inside a caller's transaction (two statements fewer per transition), so
    # nothing is raised inside the block: an exception there would doom the caller's work.
    with transaction.atomic(savepoint=False):
        order = Order.objects.select_for_update().filter(pk=order_id).first()
        applied = order is not None and _apply(order, to=to, cause=cause, message_id=message_id)
    if order is None:
        raise OrderNotFound(f"Order {order_id} does not exist.", extra={"order_id": str(order_id)})
    return TransitionResult(order=order, applied=applied)


def _apply(order: Order, *, to: OrderStatus, cause: str, message_id: uuid.UUID | None) -> bool:
    current = order.status
    if not can_transition(current=current, to=to, failed_from=order.failed_from):
        logger.info(
            "transition refused: order=%s %s -> %s cause=%r message=%s",
            order.id,
            current,
            to,
            cause,
            message_id,
        )
        return False
    order.failed_from = current if to == OrderStatus.FAILED else ""
    order.status = to
    order.version += 1
    order.save(update_fields=["status", "failed_from", "version", "updated_at"])
    OrderEvent.objects.create(
        order=order,
        from_status=current,
        to_status=to,
        cause=cause[:255],
        message_id=message_id,
        version=order.version,
    )
    # DEBUG: the OrderEvent row is the record; a log line per step is cost without news.
    logger.debug("order=%s %s -> %s cause=%r message=%s", order.id, current, to, cause, message_id)
    return True


def create_order(
    *,
    buyer: AbstractBaseUser,
    product_name: str,
    quantity: int,
    unit_price: Decimal,
    currency: str,
    idempotency_key: str | None = None,
) -> CreateResult:
    """Accept an order as PENDING, with its first history event and its fraud-screening
    message, in one transaction; the message is published after commit.

    With an `idempotency_key`, a repeat of the same order returns the existing one
    (`created=False`); the same key with a different order raises IdempotencyKeyReused.
    """
    fields = {
        "product_name": product_name,
        "quantity": quantity,
        "unit_price": unit_price,
        "currency": currency,
    }
    if idempotency_key is not None:
        existing = _order_with_key(buyer=buyer, key=idempotency_key)
        if existing is not None:
            return _replay_of(existing, fields)
    try:
        with transaction.atomic():
            order = Order.objects.create(
                buyer=buyer,
                total=quantity * unit_price,
                idempotency_key=idempotency_key,
                **fields,
            )
            OrderEvent.objects.create(
                order=order, to_status=order.status, cause="created", version=order.version
            )
            outbox.enqueue(task_name="fraud.screen_order", kwargs={"order_id": str(order.id)})
    except IntegrityError:
        # Two requests with one key raced and the other committed first.
        existing = idempotency_key and _order_with_key(buyer=buyer, key=idempotency_key)
        if not existing:
            raise
        return _replay_of(existing, fields)
    logger.info(
        "order=%s created for buyer=%s total=%s %s", order.id, buyer.pk, order.total, currency
    )
    return CreateResult(order=order, created=True)


def cancel_order(*, order_id: uuid.UUID, actor: AbstractBaseUser) -> Order:
    """Cancel a PENDING order on the buyer's (or staff's) request."""
    result = transition(order_id=order_id, to=OrderStatus.CANCELED, cause=f"canceled by {actor}")
    if not result.applied:
        raise OrderNotCancelable(
            f"Only a PENDING order can be canceled; this one is {result.order.status}.",
            extra={"status": result.order.status},
        )
    return result.order


def fail_order(*, order_id: uuid.UUID, cause: str) -> TransitionResult | None:
    """Move an order whose step was dead-lettered to FAILED, remembering where it stopped.

    A missing order (the message may have named one that never existed) is logged, not raised.
    """
    try:
        return transition(order_id=order_id, to=OrderStatus.FAILED, cause=cause)
    except OrderNotFound:
        logger.warning("dead letter names no existing order: order=%s", order_id)
        return None


def resume_order(*, order_id: uuid.UUID, cause: str) -> TransitionResult | None:
    """Move a FAILED order back to the status it failed from, before its step is replayed."""
    order = Order.objects.filter(pk=order_id).only("status", "failed_from").first()
    if order is None or order.status != OrderStatus.FAILED:
        return None
    return transition(order_id=order_id, to=OrderStatus(order.failed_from), cause=cause)


def _order_with_key(*, buyer: AbstractBaseUser, key: str) -> Order | None:
    return Order.objects.filter(buyer=buyer, idempotency_key=key).first()


def _replay_of(existing: Order, fields: dict) -> CreateResult:
    if any(getattr(existing, name) != value for name, value in fields.items()):
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used for a different order.",
            extra={"order_id": str(existing.id)},
        )
    return CreateResult(order=existing, created=False)
