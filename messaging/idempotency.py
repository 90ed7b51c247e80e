"""Idempotent consumers: a message id is applied at most once per consumer."""

import uuid

from django.db import IntegrityError, transaction

from .models import ProcessedMessage


def claim_message(*, consumer: str, message_id: uuid.UUID) -> bool:
    """Record that `consumer` applies `message_id`; False if it already has.

    Call it inside the transaction that applies the message's effects: the record commits
    or rolls back with them. A concurrent claim of the same id waits on the unique index
    and then gets False.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("claim_message() must run inside the transaction of its effects")
    try:
        with transaction.atomic():
            ProcessedMessage.objects.create(consumer=consumer, message_id=message_id)
    except IntegrityError:
        return False
    return True


def already_applied(*, consumer: str, message_id: uuid.UUID) -> bool:
    """A cheap early check, before any side effect; claim_message() is what guarantees it."""
    return ProcessedMessage.objects.filter(consumer=consumer, message_id=message_id).exists()
