"""The only code that writes orders: create, cancel, the one guarded transition(), and the
pipeline's steps: complete_step() applies a step's outcome, fail_step() and resume_step() are
what a step's dead letter and its replay do to the order."""

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from core import money
from messaging import outbox
from messaging.idempotency import claim_message

from . import events
from .errors import IdempotencyKeyReused, OrderNotCancelable, OrderNotFound, StepNotReplayable
from .models import Order, OrderEvent
from .state_machine import OrderStatus, can_transition
from .steps import step_at, step_of_task

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
    events.status_changed(order, from_status=current)
    # DEBUG: the OrderEvent row is the record; a log line per step is cost without news.
    logger.debug("order=%s %s -> %s cause=%r message=%s", order.id, current, to, cause, message_id)
    return True


def create_order(
    *,
    buyer: AbstractBaseUser,
    product_name: str,
    quantity: int,
    unit_price_minor: int,
    currency: str,
    idempotency_key: str | None = None,
) -> CreateResult:
    """Accept an order as PENDING, with its first history event and its fraud-screening
    message, in one transaction; the message is published after commit. Money is in
    `currency`'s minor units (core.money), as it is stored and charged.

    With an `idempotency_key`, a repeat of the same order returns the existing one
    (`created=False`); the same key with a different order raises IdempotencyKeyReused.
    """
    fields = {
        "product_name": product_name,
        "quantity": quantity,
        "unit_price_minor": unit_price_minor,
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
                total_minor=quantity * unit_price_minor,
                idempotency_key=idempotency_key,
                **fields,
            )
            OrderEvent.objects.create(
                order=order, to_status=order.status, cause="created", version=order.version
            )
            _enqueue_step(order)
    except IntegrityError:
        # Two requests with one key raced and the other committed first.
        existing = idempotency_key and _order_with_key(buyer=buyer, key=idempotency_key)
        if not existing:
            raise
        return _replay_of(existing, fields)
    logger.info(
        "order=%s created for buyer=%s total=%s",
        order.id,
        buyer.pk,
        money.display(order.total_minor, currency),
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


def complete_step(
    *,
    task_name: str,
    order_id: uuid.UUID,
    message_id: uuid.UUID,
    outcome: OrderStatus,
    cause: str,
    record: Callable[[], object] | None = None,
) -> bool:
    """Apply the outcome of the step `task_name` to its order, if the step is still due.

    In one transaction: lock the order; check that it is still in the step's status and that
    this message was not applied before (claimed once per step); run `record`, the step's own
    writes; move the order to `outcome`; write the next step's message as an outbox row.
    A step no longer due (a duplicate, a stale or late copy, a canceled or failed order)
    writes nothing and returns False; it is not an error.
    """
    step = step_of_task(task_name)
    if outcome not in step.outcomes:
        raise ValueError(f"{task_name} cannot move an order to {outcome}")
    with transaction.atomic():
        order = _locked_order(order_id)
        if order.status != step.status:
            logger.info(
                "step no longer due: order=%s is %s, not %s (task=%s message=%s)",
                order_id,
                order.status,
                step.status,
                task_name,
                message_id,
            )
            return False
        if not claim_message(consumer=task_name, message_id=message_id):
            logger.info("message already applied: order=%s message=%s", order_id, message_id)
            return False
        if record is not None:
            record()
        _apply(order, to=outcome, cause=cause, message_id=message_id)
        _enqueue_step(order)
    return True


def fail_step(*, task_name: str, order_id: uuid.UUID, cause: str) -> bool:
    """What a dead letter of the step `task_name` does to its order; False if it is stale.

    An order still at that step moves to FAILED (remembering where it stopped); one already
    FAILED at that step stays so. An order that has moved on (a stale copy died after another
    copy did the step) or is elsewhere is left alone: the dead letter is stale. A missing
    order is logged; its dead letter is not stale, so an operator sees it.
    Runs inside the caller's transaction (the dead letter's recording).
    """
    step = step_of_task(task_name)
    with transaction.atomic(savepoint=False):
        order = Order.objects.select_for_update().filter(pk=order_id).first()
        if order is None:
            logger.warning("dead letter names no existing order: order=%s", order_id)
            return True
        if order.status == step.status:
            return _apply(order, to=OrderStatus.FAILED, cause=cause, message_id=None)
        if order.status == OrderStatus.FAILED and order.failed_from == step.status:
            return True
    logger.info(
        "stale dead letter: order=%s is %s, past or outside %s (%s)",
        order_id,
        order.status,
        task_name,
        cause,
    )
    return False


def resume_step(*, task_name: str, order_id: uuid.UUID, cause: str) -> Order:
    """Before a dead letter of the step `task_name` is replayed: resume the order at that step.

    A FAILED order that failed at this step goes back to the step's status; an order already
    there is left as it is. Any other order has passed the step (or never reached it), and
    the replay is refused with StepNotReplayable. Runs inside the caller's transaction (the
    replay's, which also writes the step's message to the outbox).
    """
    step = step_of_task(task_name)
    with transaction.atomic(savepoint=False):
        order = Order.objects.select_for_update().filter(pk=order_id).first()
        due = order is not None and (
            order.status == step.status
            or (order.status == OrderStatus.FAILED and order.failed_from == step.status)
        )
        if due and order.status == OrderStatus.FAILED:
            _apply(order, to=step.status, cause=cause, message_id=None)
    if order is None:
        raise StepNotReplayable(
            f"Order {order_id} does not exist.", extra={"order_id": str(order_id)}
        )
    if not due:
        raise StepNotReplayable(
            f"Order {order_id} is {order.status}: it has passed {task_name} (or never reached "
            "it), so replaying that step would do nothing.",
            extra={"order_id": str(order_id), "status": order.status},
        )
    return order


def _locked_order(order_id: uuid.UUID) -> Order:
    order = Order.objects.select_for_update().filter(pk=order_id).first()
    if order is None:
        raise OrderNotFound(f"Order {order_id} does not exist.", extra={"order_id": str(order_id)})
    return order


def _enqueue_step(order: Order) -> None:
    """The message of the step that runs in the order's status, if any, as an outbox row."""
    if (step := step_at(order.status)) is not None:
        outbox.enqueue(task_name=step.task_name, kwargs={"order_id": str(order.id)})


def _order_with_key(*, buyer: AbstractBaseUser, key: str) -> Order | None:
    return Order.objects.filter(buyer=buyer, idempotency_key=key).first()


def _replay_of(existing: Order, fields: dict) -> CreateResult:
    if any(getattr(existing, name) != value for name, value in fields.items()):
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used for a different order.",
            extra={"order_id": str(existing.id)},
        )
    return CreateResult(order=existing, created=False)
