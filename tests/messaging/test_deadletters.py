"""Dead letters: reading what RabbitMQ dead-lettered, recording it, replaying and discarding it.

No broker: replays are published to a recorder (or to kombu's in-memory transport where the
published message itself is asserted on).
"""

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from amqp.exceptions import NotFound
from django.db import connection
from django.utils import timezone
from django_celery_results.models import TaskResult
from kombu.exceptions import OperationalError

from messaging import deadletters, outbox
from messaging.deadletters import DeadLetterNotReplayable
from messaging.models import DeadLetter, OutboxMessage
from ordering.errors import StepNotReplayable
from ordering.models import Order
from ordering.state_machine import OrderStatus

from ..factories import DeadLetterFactory, OrderFactory, UserFactory

DIED_AT = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)
STALE = DeadLetter.Status.STALE


class ReplayRecorder:
    """What replays sent: a replay writes its message to the outbox, which tests leave
    unpublished (no relay runs). `published` lists the replayed dead letters, in order."""

    @property
    def published(self) -> list[dict]:
        waiting = OutboxMessage.objects.filter(published_at__isnull=True).values_list("id")
        replayed = DeadLetter.objects.filter(message_id__in=[str(i) for (i,) in waiting])
        return [
            {"pk": d.pk, "queue": d.queue, "body": bytes(d.body)}
            for d in replayed.order_by("acted_at", "pk")
        ]


@pytest.fixture
def replays() -> ReplayRecorder:
    return ReplayRecorder()


def celery_message(
    *,
    order_id: object = None,
    task: str = "fraud.screen_order",
    message_id: str | None = None,
    queue: str = "fraud",
    reason: str = "rejected",
) -> dict:
    """What the dead-letter consumer gets: a Celery protocol-2 JSON message that died."""
    headers = {
        "id": message_id or str(uuid.uuid4()),
        "task": task,
        "retries": 0,
        "x-death": [
            {
                "count": 1,
                "reason": reason,
                "queue": queue,
                "time": DIED_AT,
                "exchange": queue,
                "routing-keys": [queue],
            }
        ],
        "x-first-death-queue": queue,
        "x-first-death-reason": reason,
        "x-first-death-exchange": queue,
        "x-last-death-queue": queue,
        "x-last-death-reason": reason,
        "x-last-death-exchange": queue,
        "x-delivery-count": 5,
    }
    return {
        "body": json.dumps([[], {"order_id": str(order_id or uuid.uuid4())}, {}]).encode(),
        "headers": headers,
        "properties": {
            "content_type": "application/json",
            "content_encoding": "utf-8",
            "correlation_id": headers["id"],
            "delivery_mode": 2,
            "priority": 0,
        },
    }


def died_again(message: dict) -> dict:
    """The same message dead-lettered once more: a later death in its x-death."""
    death = message["headers"]["x-death"][0]
    later = {**death, "time": death["time"] + timedelta(seconds=30)}
    return {**message, "headers": {**message["headers"], "x-death": [later]}}


def record_message(**message) -> DeadLetter:
    return deadletters.record(deadletters.read_death(**celery_message(**message)))


def reload(instance):
    instance.refresh_from_db()
    return instance


# read_death(): decoding, never failing ---------------------------------------------------------


def test_read_death_decodes_a_celery_message():
    order_id = uuid.uuid4()
    message = celery_message(order_id=order_id, message_id="4a1f7c2e-0000-4000-8000-000000000001")

    death = deadletters.read_death(**message)

    assert death.message_id == "4a1f7c2e-0000-4000-8000-000000000001"
    assert (death.queue, death.exchange, death.routing_key) == ("fraud", "fraud", "fraud")
    assert (death.reason, death.task_name) == ("rejected", "fraud.screen_order")
    assert death.kwargs == {"order_id": str(order_id)}
    assert death.subject_id == order_id
    assert death.body == message["body"]
    assert (death.content_type, death.content_encoding) == ("application/json", "utf-8")


def test_read_death_makes_headers_json_safe():
    message = celery_message()
    message["headers"]["x-opaque"] = b"\xffraw"
    message["headers"]["x-nested"] = {"when": [DIED_AT], "bytes": (b"ok",)}

    death = deadletters.read_death(**message)

    assert death.headers["x-death"][0]["time"] == DIED_AT.isoformat()
    assert death.headers["x-opaque"] == "\\xffraw"
    assert death.headers["x-nested"] == {"when": [DIED_AT.isoformat()], "bytes": ["ok"]}
    assert json.loads(json.dumps(death.headers)) == death.headers
    assert json.loads(json.dumps(death.properties)) == death.properties


def test_a_message_without_an_id_is_named_by_the_digest_of_its_body():
    message = celery_message()
    del message["headers"]["id"], message["properties"]["correlation_id"]

    death = deadletters.read_death(**message)

    assert death.message_id == f"sha256:{hashlib.sha256(message['body']).hexdigest()}"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"\xff\x00\xfe not json at all", "application/json"),
        (b"{not json", "application/json"),
        (b'{"order_id": "8d8c3b1e-8a3c-4bd4-9c39-4f1c2a4d8e55"}', "application/json"),
        (b"[1]", "application/json"),
        (b'[[], "kwargs", {}]', "application/json"),
        (b"", "application/json"),
        (b'[[], {"order_id": "8d8c3b1e-8a3c-4bd4-9c39-4f1c2a4d8e55"}, {}]', "text/plain"),
        (b"\x80\x04\x95pickle", "application/x-python-serialize"),
    ],
)
def test_a_body_that_is_not_a_celery_json_message_is_read_without_kwargs(body, content_type):
    death = deadletters.read_death(
        body=body,
        headers={"id": "m-1", "task": "fraud.screen_order"},
        properties={"content_type": content_type},
    )

    assert (death.kwargs, death.subject_id) == (None, None)
    assert (death.message_id, death.body) == ("m-1", body)


@pytest.mark.parametrize("order_id", ["not-a-uuid", 42, None, ["a"]])
def test_an_order_id_that_is_not_a_uuid_is_read_as_none(order_id):
    body = json.dumps([[], {"order_id": order_id}, {}]).encode()

    death = deadletters.read_death(
        body=body, headers={"id": "m-1"}, properties={"content_type": "application/json"}
    )

    assert death.kwargs == {"order_id": order_id}
    assert death.subject_id is None


def test_read_death_survives_no_headers_and_no_properties():
    death = deadletters.read_death(body=b"x", headers=None, properties=None)

    assert death.message_id == f"sha256:{hashlib.sha256(b'x').hexdigest()}"
    assert (death.queue, death.reason, death.task_name, death.kwargs) == ("", "unknown", "", None)


def test_a_message_that_crashed_every_delivery_dies_of_the_delivery_limit():
    death = deadletters.read_death(**celery_message(queue="billing", reason="delivery_limit"))

    assert (death.queue, death.reason) == ("billing", "delivery_limit")


def test_without_x_death_the_first_death_headers_name_queue_and_reason():
    message = celery_message(queue="billing", reason="expired")
    del message["headers"]["x-death"]

    death = deadletters.read_death(**message)

    assert (death.queue, death.reason) == ("billing", "expired")


def test_the_most_recent_death_comes_first_in_x_death():
    message = celery_message(queue="billing")
    message["headers"]["x-death"].append({"count": 1, "reason": "expired", "queue": "fraud"})

    death = deadletters.read_death(**message)

    assert (death.queue, death.reason) == ("billing", "rejected")


# record(): one row per message id, and the task's reaction ------------------------------------


@pytest.mark.django_db
def test_record_keeps_the_raw_body_and_what_the_message_said():
    message = celery_message()
    message["body"] = b'[[], {"order_id": "x"}, {}]\xff\x00 trailing bytes'

    recorded = deadletters.record(deadletters.read_death(**message))

    stored = DeadLetter.objects.get()
    assert stored.pk == recorded.pk
    assert bytes(stored.body) == message["body"]
    assert stored.message_id == message["headers"]["id"]
    assert (stored.queue, stored.reason, stored.task_name) == (
        "fraud",
        "rejected",
        "fraud.screen_order",
    )
    assert (stored.status, stored.death_count, stored.replay_count) == (DeadLetter.Status.NEW, 1, 0)
    assert stored.first_death_at == stored.last_death_at
    assert stored.headers["x-death"][0]["time"] == DIED_AT.isoformat()


@pytest.mark.django_db
def test_the_same_message_dying_again_after_a_replay_is_one_row_and_new_again():
    order = OrderFactory()
    message = celery_message(order_id=order.id)
    first = deadletters.record(deadletters.read_death(**message))
    deadletters.replay(dead_letter_id=first.pk, actor=None)

    again = deadletters.record(deadletters.read_death(**died_again(message)))

    assert DeadLetter.objects.count() == 1
    again = reload(again)
    assert (again.pk, again.death_count, again.status) == (first.pk, 2, DeadLetter.Status.NEW)
    assert again.replay_count == 1
    assert again.first_death_at == first.first_death_at
    assert again.last_death_at > first.last_death_at
    # The order failed, resumed with the replay, and failed again with the second death.
    assert [(e.from_status, e.to_status) for e in reload(order).events.all()] == [
        ("", OrderStatus.PENDING),
        (OrderStatus.PENDING, OrderStatus.FAILED),
        (OrderStatus.FAILED, OrderStatus.PENDING),
        (OrderStatus.PENDING, OrderStatus.FAILED),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("task", "status"),
    [("fraud.screen_order", OrderStatus.PENDING), ("billing.charge_order", OrderStatus.APPROVED)],
)
def test_a_dead_lettered_step_fails_its_order_remembering_where_it_stopped(task, status):
    order = OrderFactory(status=status)

    record_message(order_id=order.id, task=task)

    order = reload(order)
    assert (order.status, order.failed_from, order.version) == (OrderStatus.FAILED, status, 2)
    assert order.events.latest("version").cause == f"{task} dead-lettered: rejected"


@pytest.mark.django_db
@pytest.mark.parametrize("order_id", [uuid.uuid4(), "not-a-uuid", 42])
def test_a_dead_letter_naming_no_existing_order_is_still_recorded(order_id):
    message = celery_message()
    message["body"] = json.dumps([[], {"order_id": str(order_id)}, {}]).encode()

    recorded = deadletters.record(deadletters.read_death(**message))

    assert DeadLetter.objects.get().pk == recorded.pk
    assert recorded.subject_id == (order_id if isinstance(order_id, uuid.UUID) else None)


@pytest.mark.django_db
@pytest.mark.parametrize("task", ["legacy.unknown_task", "celery.backend_cleanup", ""])
def test_a_dead_letter_of_a_task_without_hooks_is_recorded_and_touches_no_order(task):
    order = OrderFactory()

    record_message(order_id=order.id, task=task)

    assert DeadLetter.objects.get().task_name == task
    assert (reload(order).status, order.version) == (OrderStatus.PENDING, 1)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("task", "status"),
    [
        ("fraud.screen_order", OrderStatus.APPROVED),  # another copy did the step
        ("fraud.screen_order", OrderStatus.PROCESSED),
        ("fraud.screen_order", OrderStatus.CANCELED),  # the buyer canceled first
        ("fraud.screen_order", OrderStatus.CANCELED_FRAUD),
        ("billing.charge_order", OrderStatus.PROCESSED),
        ("billing.charge_order", OrderStatus.PAYMENT_FAILED),
        ("billing.charge_order", OrderStatus.PENDING),  # a step not reached yet
    ],
)
def test_a_dead_letter_of_a_step_the_order_is_not_at_is_stale_and_changes_nothing(task, status):
    order = OrderFactory(status=status)

    recorded = record_message(order_id=order.id, task=task)

    assert reload(recorded).status == STALE
    assert (reload(order).status, order.version) == (status, 1)


@pytest.mark.django_db
def test_a_stale_dead_letter_becomes_stale_again_when_it_dies_again():
    order = OrderFactory(status=OrderStatus.APPROVED)
    message = celery_message(order_id=order.id)
    deadletters.record(deadletters.read_death(**message))

    again = deadletters.record(deadletters.read_death(**died_again(message)))

    assert (reload(again).status, again.death_count) == (STALE, 2)
    assert reload(order).version == 1


@pytest.mark.django_db
def test_a_second_dead_letter_of_the_step_an_order_failed_at_is_new_too():
    """Two copies of a step died: either one's replay resumes the order."""
    order = OrderFactory(status=OrderStatus.FAILED, failed_from=OrderStatus.PENDING)

    recorded = record_message(order_id=order.id, task="fraud.screen_order")

    assert reload(recorded).status == DeadLetter.Status.NEW
    assert (reload(order).status, order.version) == (OrderStatus.FAILED, 1)


@pytest.mark.django_db
def test_a_dead_letter_of_another_step_than_the_one_the_order_failed_at_is_stale():
    order = OrderFactory(status=OrderStatus.FAILED, failed_from=OrderStatus.APPROVED)

    recorded = record_message(order_id=order.id, task="fraud.screen_order")

    assert reload(recorded).status == STALE
    assert reload(order).failed_from == OrderStatus.APPROVED


@pytest.mark.django_db
def test_an_undecodable_body_is_recorded_without_touching_any_order():
    order = OrderFactory()
    message = celery_message(order_id=order.id)
    message["body"] = b"\xff\x00" + str(order.id).encode()

    recorded = deadletters.record(deadletters.read_death(**message))

    assert (recorded.subject_id, bytes(reload(recorded).body)) == (None, message["body"])
    assert reload(order).status == OrderStatus.PENDING


@pytest.mark.django_db
def test_a_header_with_a_nul_byte_is_still_recorded():
    message = celery_message()
    message["headers"]["x-opaque"] = b"\xff\x00binary"

    deadletters.record(deadletters.read_death(**message))

    assert DeadLetter.objects.count() == 1


@pytest.mark.django_db
def test_a_message_with_an_overlong_id_is_still_recorded():
    deadletters.record(deadletters.read_death(**celery_message(message_id="x" * 300)))

    assert DeadLetter.objects.count() == 1


# replay() -------------------------------------------------------------------------------------


def outbox_row(dead_letter: DeadLetter) -> OutboxMessage:
    return OutboxMessage.objects.get(pk=dead_letter.message_id)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("task", "failed_from"),
    [("fraud.screen_order", OrderStatus.PENDING), ("billing.charge_order", OrderStatus.APPROVED)],
)
def test_replay_resumes_the_order_and_writes_the_same_message_to_the_outbox(task, failed_from):
    order = OrderFactory(status=OrderStatus.FAILED, failed_from=failed_from)
    dead_letter = DeadLetterFactory(
        subject_id=order.id, task_name=task, headers={"request_id": "req-1234abcd"}
    )
    operator = UserFactory(is_staff=True)

    replayed = deadletters.replay(dead_letter_id=dead_letter.pk, actor=operator)

    order = reload(order)
    assert (order.status, order.failed_from, order.version) == (failed_from, "", 2)
    assert order.events.latest("version").cause == f"{task} replayed"
    message = outbox_row(dead_letter)
    assert (message.task_name, message.kwargs) == (task, {"order_id": str(order.id)})
    assert (message.published_at, message.headers) == (None, {"request_id": "req-1234abcd"})
    replayed = reload(replayed)
    assert (replayed.status, replayed.replay_count) == (DeadLetter.Status.REPLAYED, 1)
    assert (replayed.acted_by, replayed.acted_at is not None) == (operator, True)


@pytest.mark.django_db
def test_replay_sends_the_kept_outbox_row_again_with_its_attempts_reset():
    order = OrderFactory(status=OrderStatus.FAILED, failed_from=OrderStatus.PENDING)
    dead_letter = DeadLetterFactory(subject_id=order.id)
    OutboxMessage.objects.create(
        id=dead_letter.message_id,
        task_name="fraud.screen_order",
        kwargs={"order_id": str(order.id)},
        headers={"request_id": "req-original"},
        published_at=timezone.now(),
        attempts=3,
        last_error="refused",
    )

    deadletters.replay(dead_letter_id=dead_letter.pk, actor=None)

    message = outbox_row(dead_letter)
    assert (message.published_at, message.attempts, message.last_error) == (None, 0, "")
    assert message.headers == {"request_id": "req-original"}
    assert OutboxMessage.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("task", "status"),
    [
        ("fraud.screen_order", OrderStatus.APPROVED),
        ("fraud.screen_order", OrderStatus.PROCESSED),
        ("fraud.screen_order", OrderStatus.CANCELED),
        ("billing.charge_order", OrderStatus.PENDING),
        ("billing.charge_order", OrderStatus.PAYMENT_FAILED),
    ],
)
def test_replay_of_a_step_the_order_has_passed_or_not_reached_is_refused(task, status):
    order = OrderFactory(status=status)
    dead_letter = DeadLetterFactory(subject_id=order.id, task_name=task, status=STALE)

    with pytest.raises(StepNotReplayable, match=f"is {status}: it has passed {task}"):
        deadletters.replay(dead_letter_id=dead_letter.pk, actor=None)

    assert (reload(dead_letter).status, dead_letter.replay_count) == (STALE, 0)
    assert (reload(order).status, order.version) == (status, 1)
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db
def test_replay_of_a_step_failed_from_another_step_is_refused():
    order = OrderFactory(status=OrderStatus.FAILED, failed_from=OrderStatus.APPROVED)
    dead_letter = DeadLetterFactory(subject_id=order.id, task_name="fraud.screen_order")

    with pytest.raises(StepNotReplayable):
        deadletters.replay(dead_letter_id=dead_letter.pk, actor=None)

    assert reload(order).status == OrderStatus.FAILED
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db
def test_replaying_twice_resumes_the_order_once_and_sends_one_message():
    order = OrderFactory(status=OrderStatus.FAILED, failed_from=OrderStatus.PENDING)
    dead_letter = DeadLetterFactory(subject_id=order.id)
    deadletters.replay(dead_letter_id=dead_letter.pk, actor=None)
    first_acted_at = reload(dead_letter).acted_at

    deadletters.replay(dead_letter_id=dead_letter.pk, actor=None)

    dead_letter = reload(dead_letter)
    assert (dead_letter.status, dead_letter.replay_count) == (DeadLetter.Status.REPLAYED, 2)
    assert dead_letter.acted_at > first_acted_at
    assert (reload(order).status, order.version) == (OrderStatus.PENDING, 2)
    assert list(OutboxMessage.objects.values_list("id", flat=True)) == [
        uuid.UUID(dead_letter.message_id)
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields",
    [
        {"status": DeadLetter.Status.DISCARDED},
        {"body": b"\xff\x00 garbage"},
        {"content_type": "application/x-python-serialize"},
        {"task_name": "legacy.unknown_task"},
        {"task_name": ""},
        {"message_id": "sha256:" + "0" * 64},
    ],
    ids=["discarded", "undecodable", "pickle", "unknown-task", "no-task", "no-uuid"],
)
def test_a_dead_letter_that_is_no_sendable_message_is_not_replayable(fields):
    order = OrderFactory(status=OrderStatus.FAILED, failed_from=OrderStatus.PENDING)
    dead_letter = DeadLetterFactory(subject_id=order.id, **fields)

    with pytest.raises(DeadLetterNotReplayable, match=f"Dead letter {dead_letter.pk} cannot be"):
        deadletters.replay(dead_letter_id=dead_letter.pk, actor=None)

    assert (reload(dead_letter).replay_count, reload(order).status) == (0, OrderStatus.FAILED)
    assert not OutboxMessage.objects.exists()


@pytest.fixture
def publish_on_commit(settings, monkeypatch):
    """The after-commit publish on, with the broker replaced by a recorder of what it saw."""
    settings.OUTBOX_PUBLISH_ON_COMMIT = True
    seen: list = []
    monkeypatch.setattr(outbox, "send_message", lambda **message: seen.append(message))
    return seen


@pytest.mark.django_db(transaction=True)
def test_a_replay_is_published_only_after_the_resumed_order_is_committed(
    publish_on_commit, monkeypatch
):
    """Published inside the transaction, the worker could see the order still FAILED."""
    order = OrderFactory(status=OrderStatus.FAILED, failed_from=OrderStatus.PENDING)
    dead_letter = DeadLetterFactory(subject_id=order.id)
    seen = []

    def send_message(**message):
        seen.append((connection.in_atomic_block, Order.objects.get(pk=order.id).status))

    monkeypatch.setattr(outbox, "send_message", send_message)

    deadletters.replay(dead_letter_id=dead_letter.pk, actor=None)

    assert seen == [(False, OrderStatus.PENDING)]
    assert outbox_row(dead_letter).published_at is not None


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "error",
    [
        OperationalError("[Errno 111] Connection refused"),
        NotFound("NOT_FOUND - no queue 'fraud'"),
        ConnectionResetError("reset by peer"),
    ],
    ids=["kombu", "amqp", "socket"],
)
def test_a_replay_while_the_broker_refuses_is_kept_for_the_relay(
    publish_on_commit, monkeypatch, error
):
    order = OrderFactory(status=OrderStatus.FAILED, failed_from=OrderStatus.PENDING)
    dead_letter = DeadLetterFactory(subject_id=order.id)

    def refuse(**message):
        raise error

    monkeypatch.setattr(outbox, "send_message", refuse)

    deadletters.replay(dead_letter_id=dead_letter.pk, actor=UserFactory())

    # Nothing to undo: the order is resumed and its message waits in the outbox.
    assert reload(order).status == OrderStatus.PENDING
    assert reload(dead_letter).status == DeadLetter.Status.REPLAYED
    message = outbox_row(dead_letter)
    assert (message.published_at, message.attempts) == (None, 1)
    assert str(error) in message.last_error


# discard() ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_discard_marks_it_handled_and_who_did_it(replays):
    order = OrderFactory(status=OrderStatus.FAILED, failed_from=OrderStatus.PENDING)
    dead_letter = DeadLetterFactory(subject_id=order.id)
    operator = UserFactory(is_staff=True)

    deadletters.discard(dead_letter_id=dead_letter.pk, actor=operator)

    dead_letter = reload(dead_letter)
    assert (dead_letter.status, dead_letter.acted_by) == (DeadLetter.Status.DISCARDED, operator)
    assert dead_letter.acted_at is not None
    assert (dead_letter.replay_count, replays.published) == (0, [])
    assert reload(order).status == OrderStatus.FAILED


# last_error_of() ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_stored_last_error_wins_over_the_result_backend():
    dead_letter = DeadLetterFactory(last_error="GatewayTimeout: 30 s")
    TaskResult.objects.create(task_id=dead_letter.message_id, traceback="Traceback: other")

    assert deadletters.last_error_of(dead_letter) == "GatewayTimeout: 30 s"


@pytest.mark.django_db
def test_without_a_stored_error_the_traceback_of_the_task_result_is_shown():
    dead_letter = DeadLetterFactory()
    TaskResult.objects.create(task_id=str(uuid.uuid4()), traceback="someone else's")
    TaskResult.objects.create(
        task_id=dead_letter.message_id, status="FAILURE", traceback="Traceback: GatewayTimeout"
    )

    assert deadletters.last_error_of(dead_letter) == "Traceback: GatewayTimeout"


@pytest.mark.django_db
def test_a_task_result_without_traceback_shows_its_result():
    dead_letter = DeadLetterFactory()
    TaskResult.objects.create(task_id=dead_letter.message_id, result='"declined"')

    assert deadletters.last_error_of(dead_letter) == '"declined"'


@pytest.mark.django_db
def test_without_any_error_last_error_of_is_empty():
    assert deadletters.last_error_of(DeadLetterFactory()) == ""


@pytest.mark.django_db
def test_the_same_death_delivered_again_is_counted_once_and_fails_nothing_again():
    """The consumer died between its commit and its ack; meanwhile the order was replayed."""
    order = OrderFactory()
    message = celery_message(order_id=order.id)
    first = deadletters.record(deadletters.read_death(**message))
    deadletters.replay(dead_letter_id=first.pk, actor=None)

    again = deadletters.record(deadletters.read_death(**message))

    again = reload(again)
    assert (again.death_count, again.status) == (1, DeadLetter.Status.REPLAYED)
    assert reload(order).status == OrderStatus.PENDING
