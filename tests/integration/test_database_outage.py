"""The database dies under a POST to the real web process: a 503 to retry, never half an order."""

import threading
import uuid

import pytest
from django.db import connections

from messaging.models import OutboxMessage
from ordering.models import Order, OrderEvent

from ..live.wait import wait_until
from .test_pipeline import NORMAL, wait_for_terminal

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]

# Read from the test's own session, outside any transaction: within one, PostgreSQL answers
# every read of pg_stat_activity from the snapshot it took first.
WAITING_TO_INSERT_ITS_MESSAGE = """
    SELECT pid FROM pg_stat_activity
    WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE %s
"""


def test_a_post_whose_database_session_is_killed_is_503_and_safe_to_retry(buyer_api):
    key = {"Idempotency-Key": f"outage-{uuid.uuid4()}"}
    assert buyer_api.get("/api/orders/").status == 200  # the web holds its connections open
    answers = []

    # Hold the POST inside its transaction, after it wrote the order and its history row and
    # before it writes the outbox row, then kill its database session there.
    with _outbox_writes_held():
        post = threading.Thread(
            target=lambda: answers.append(buyer_api.post("/api/orders/", NORMAL, key))
        )
        post.start()
        pids = wait_until(
            lambda: _fetch_pids(
                connections["default"],
                WAITING_TO_INSERT_ITS_MESSAGE,
                [f'INSERT INTO "{OutboxMessage._meta.db_table}"%'],
            ),
            timeout=10,
            what="the POST to wait for its outbox insert",
        )
        assert len(pids) == 1, pids
        _execute(connections["default"], "SELECT pg_terminate_backend(%s)", [pids[0]])
        post.join(timeout=30)

    [answer] = answers
    assert answer.status == 503, answer.body
    assert answer.body["code"] == "database_unavailable"
    assert int(answer.headers["Retry-After"]) > 0
    # Rolled back: neither the order nor the history row it had written is left.
    assert not Order.objects.filter(idempotency_key=key["Idempotency-Key"]).exists()
    assert not OrderEvent.objects.exists()

    retried = buyer_api.post("/api/orders/", NORMAL, key)
    repeated = buyer_api.post("/api/orders/", NORMAL, key)

    assert (retried.status, repeated.status) == (201, 200), (retried.body, repeated.body)
    assert retried.body["id"] == repeated.body["id"]
    assert Order.objects.filter(idempotency_key=key["Idempotency-Key"]).count() == 1
    assert wait_for_terminal(uuid.UUID(retried.body["id"])).status == "PROCESSED"


class _outbox_writes_held:
    """A second database session that blocks inserts into the outbox until it exits."""

    def __enter__(self) -> None:
        self.connection = connections["default"].copy()
        _execute(self.connection, "BEGIN")
        _execute(self.connection, f'LOCK TABLE "{OutboxMessage._meta.db_table}" IN SHARE MODE')

    def __exit__(self, *exc_info) -> None:
        try:
            _execute(self.connection, "ROLLBACK")
        finally:
            self.connection.close()


def _execute(connection, sql: str, params=None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _fetch_pids(connection, sql: str, params: list) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [pid for (pid,) in cursor.fetchall()]
