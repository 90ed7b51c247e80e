"""Idempotent consumers: a message id is applied at most once per consumer."""

import uuid

from django.db import connection, transaction
from django.utils import timezone

from .models import ProcessedMessage


def claim_message(*, consumer: str, message_id: uuid.UUID) -> bool:
    """Record that `consumer` applies `message_id`; False if it already has.

    Call it inside the transaction that applies the message's effects: the record commits
    or rolls back with them. A concurrent claim of the same id waits on the unique index
    and then gets False. One statement (INSERT ... ON CONFLICT DO NOTHING), no savepoint.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("claim_message() must run inside the transaction of its effects")
    table = ProcessedMessage._meta.db_table
    # Each value as its field writes it (a UUID is 32 hex characters on SQLite, native on
    # PostgreSQL), so the statement itself names no database.
    values = {
        "consumer": consumer,
        "message_id": uuid.UUID(str(message_id)),
        "processed_at": timezone.now(),
    }
    params = [
        ProcessedMessage._meta.get_field(name).get_db_prep_value(value, connection)
        for name, value in values.items()
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (consumer, message_id, processed_at) VALUES (%s, %s, %s) "  # noqa: S608 - the table name is ours
            "ON CONFLICT (consumer, message_id) DO NOTHING RETURNING id",
            params,
        )
        return cursor.fetchone() is not None
