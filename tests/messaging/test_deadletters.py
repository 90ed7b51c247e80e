"""Dead letters: reading what RabbitMQ dead-lettered, recording it, replaying and discarding it.

No broker: replays are published to a recorder (or to kombu's in-memory transport where the
published message itself is asserted on).
"""

import hashlib
import json
import uuid
from datetime import UTC, datetime

import pytest
from amqp.exceptions import NotFound
from django.db import connection
from django_celery_results.models import TaskResult
from kombu import Connection
from kombu.exceptions import OperationalError

from messaging import deadletters
from messaging.deadletters import DeadLetterNotReplayable, ReplayFailed
from messaging.models import DeadLetter
from ordering.models import Order
from ordering.state_machine import OrderStatus

from ..factories import DeadLetterFactory, OrderFactory, UserFactory

DIED_AT = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)


class ReplayRecorder:
    """Stands in for deadletters._publish_to_queue: remembers each replay, or fails like a
    broker that is down: for every replay when `error` is set, else for those in `down_for`."""

    def __init__(self) -> None:
        self.published: list[dict] = []
        self.error: BaseException | None = None
        self.down_for: set[int] = set()  # dead letter ids

    def __call__(self, dead_letter: DeadLetter) -> None:
        if self.error is not None:
            raise self.error
        if dead_letter.pk in self.down_for:
            raise OperationalError("[Errno 111] Connection refused")
        self.published.append(
            {"pk": dead_letter.pk, "queue": dead_letter.queue, "body": bytes(dead_letter.body)}
        )


@pytest.fixture
def replays(monkeypatch) -> ReplayRecorder:
    recorder = ReplayRecorder()
    monkeypatch.setattr(deadletters, "_publish_to_queue", recorder)
    return recorder


@pytest.fixture
def memory_broker(monkeypatch):
    """The real publish code, on kombu's in-memory transport instead of RabbitMQ.

    Only the `fraud` queue exists, so a replay to any other queue finds it gone.
    """
    connection = Connection("memory://")
    channel = connection.channel()
    channel.queue_declare(queue="fraud", durable=True)
    publish = deadletters._publish
    monkeypatch.setattr(
        deadletters, "_publish", lambda _connection, *args: publish(connection, *args)
    )
    yield connection
    channel.queue_delete(queue="fraud")
    connection.release()


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
    assert death.order_id == order_id
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

    assert (death.kwargs, death.order_id) == (None, None)
    assert (death.message_id, death.body) == ("m-1", body)


@pytest.mark.parametrize("order_id", ["not-a-uuid", 42, None, ["a"]])
def test_an_order_id_that_is_not_a_uuid_is_read_as_none(order_id):
    body = json.dumps([[], {"order_id": order_id}, {}]).encode()

    death = deadletters.read_death(
        body=body, headers={"id": "m-1"}, properties={"content_type": "application/json"}
    )

    assert death.kwargs == {"order_id": order_id}
    assert death.order_id is None


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
def test_the_same_message_dying_again_after_a_replay_is_one_row_and_new_again(replays):
    order = OrderFactory()
    message = celery_message(order_id=order.id)
    first = deadletters.record(deadletters.read_death(**message))
    deadletters.replay(dead_letter_id=first.pk, actor=None)

    again = deadletters.record(deadletters.read_death(**message))

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
    assert recorded.order_id == (order_id if isinstance(order_id, uuid.UUID) else None)


@pytest.mark.django_db
@pytest.mark.parametrize("task", ["legacy.unknown_task", "celery.backend_cleanup", ""])
def test_a_dead_letter_of_a_task_without_hooks_is_recorded_and_touches_no_order(task):
    order = OrderFactory()

    record_message(order_id=order.id, task=task)

    assert DeadLetter.objects.get().task_name == task
    assert (reload(order).status, order.version) == (OrderStatus.PENDING, 1)


@pytest.mark.django_db
def test_a_dead_letter_of_a_finished_order_leaves_the_order_alone():
    order = OrderFactory(status=OrderStatus.PROCESSED)

    record_message(order_id=order.id, task="billing.charge_order")

    assert DeadLetter.objects.count() == 1
    assert (reload(order).status, order.version) == (OrderStatus.PROCESSED, 1)


@pytest.mark.django_db
def test_an_undecodable_body_is_recorded_without_touching_any_order():
    order = OrderFactory()
    message = celery_message(order_id=order.id)
    message["body"] = b"\xff\x00" + str(order.id).encode()

    recorded = deadletters.record(deadletters.read_death(**message))

    assert (recorded.order_id, bytes(reload(recorded).body)) == (None, message["body"])
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


@pytest.mark.django_db
def test_replay_publishes_the_original_body_to_the_original_queue(replays):
    dead_letter = DeadLetterFactory(queue="billing", task_name="billing.charge_order")

    deadletters.replay(dead_letter_id=dead_letter.pk, actor=None)

    assert replays.published == [
        {"pk": dead_letter.pk, "queue": "billing", "body": bytes(dead_letter.body)}
    ]


@pytest.mark.django_db
def test_a_replayed_message_has_its_id_and_task_but_no_death_history(memory_broker):
    message = celery_message(queue="fraud")
    message["body"] = message["body"] + b" \xff"  # bytes a text round trip would mangle
    dead_letter = deadletters.record(deadletters.read_death(**message))

    deadletters.replay(dead_letter_id=dead_letter.pk, actor=None)

    published = memory_broker.default_channel.basic_get(queue="fraud", no_ack=True)
    assert published.body == message["body"]
    assert published.delivery_info == {"exchange": "", "routing_key": "fraud"}
    assert (published.content_type, published.content_encoding) == ("application/json", "utf-8")
    assert published.properties["correlation_id"] == message["headers"]["id"]
    assert published.headers == {
        "id": message["headers"]["id"],
        "task": "fraud.screen_order",
        "retries": 0,
    }


@pytest.mark.django_db
def test_a_replayed_message_gets_its_retries_back(memory_broker):
    message = celery_message(queue="fraud")
    message["headers"]["retries"] = 7  # it died when its retries ran out
    dead_letter = deadletters.record(deadletters.read_death(**message))

    deadletters.replay(dead_letter_id=dead_letter.pk, actor=None)

    published = memory_broker.default_channel.basic_get(queue="fraud", no_ack=True)
    assert published.headers["retries"] == 0


@pytest.mark.django_db
def test_replay_to_a_queue_that_no_longer_exists_fails_and_changes_nothing(memory_broker):
    dead_letter = DeadLetterFactory(queue="gone")

    with pytest.raises(ReplayFailed, match="Could not publish to gone"):
        deadletters.replay(dead_letter_id=dead_letter.pk, actor=None)

    assert (reload(dead_letter).status, dead_letter.replay_count) == (DeadLetter.Status.NEW, 0)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("task", "failed_from"),
    [("fraud.screen_order", OrderStatus.PENDING), ("billing.charge_order", OrderStatus.APPROVED)],
)
def test_replay_resumes_the_failed_order_before_publishing(monkeypatch, task, failed_from):
    order = OrderFactory(status=OrderStatus.FAILED, failed_from=failed_from)
    dead_letter = DeadLetterFactory(order_id=order.id, task_name=task)
    status_when_published = []
    monkeypatch.setattr(
        deadletters,
        "_publish_to_queue",
        lambda _: status_when_published.append(Order.objects.get(pk=order.id).status),
    )
    operator = UserFactory(is_staff=True)

    replayed = deadletters.replay(dead_letter_id=dead_letter.pk, actor=operator)

    assert status_when_published == [failed_from]
    order = reload(order)
    assert (order.status, order.failed_from, order.version) == (failed_from, "", 2)
    assert order.events.latest("version").cause == f"{task} replayed"
    replayed = reload(replayed)
    assert (replayed.status, replayed.replay_count) == (DeadLetter.Status.REPLAYED, 1)
    assert replayed.acted_by == operator
    assert replayed.acted_at is not None


@pytest.mark.django_db
def test_replaying_twice_publishes_twice_but_resumes_the_order_once(replays):
    order = OrderFactory(status=OrderStatus.FAILED, failed_from=OrderStatus.PENDING)
    dead_letter = DeadLetterFactory(order_id=order.id)
    deadletters.replay(dead_letter_id=dead_letter.pk, actor=None)
    first_acted_at = reload(dead_letter).acted_at

    deadletters.replay(dead_letter_id=dead_letter.pk, actor=None)

    assert len(replays.published) == 2
    dead_letter = reload(dead_letter)
    assert (dead_letter.status, dead_letter.replay_count) == (DeadLetter.Status.REPLAYED, 2)
    assert dead_letter.acted_at > first_acted_at
    assert (reload(order).status, order.version) == (OrderStatus.PENDING, 2)


@pytest.mark.django_db
def test_replay_of_a_dead_letter_whose_order_is_not_failed_leaves_the_order_alone(replays):
    order = OrderFactory(status=OrderStatus.APPROVED)

    deadletters.replay(dead_letter_id=DeadLetterFactory(order_id=order.id).pk, actor=None)

    assert len(replays.published) == 1
    assert (reload(order).status, order.version) == (OrderStatus.APPROVED, 1)


@pytest.mark.django_db
def test_replay_of_an_undecodable_body_publishes_it_as_it_is(replays):
    dead_letter = DeadLetterFactory(body=b"\xff\x00 garbage", order_id=None)

    deadletters.replay(dead_letter_id=dead_letter.pk, actor=None)

    assert replays.published[0]["body"] == b"\xff\x00 garbage"
    assert reload(dead_letter).status == DeadLetter.Status.REPLAYED


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields",
    [{"status": DeadLetter.Status.DISCARDED}, {"queue": ""}],
    ids=["discarded", "no-queue"],
)
def test_a_discarded_dead_letter_or_one_without_a_queue_is_not_replayable(replays, fields):
    order = OrderFactory(status=OrderStatus.FAILED, failed_from=OrderStatus.PENDING)
    dead_letter = DeadLetterFactory(order_id=order.id, **fields)

    with pytest.raises(DeadLetterNotReplayable):
        deadletters.replay(dead_letter_id=dead_letter.pk, actor=None)

    assert replays.published == []
    assert (reload(dead_letter).replay_count, reload(order).status) == (0, OrderStatus.FAILED)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "error",
    [
        OperationalError("[Errno 111] Connection refused"),
        NotFound("NOT_FOUND - no queue 'fraud'"),
        ConnectionResetError("reset by peer"),
    ],
    ids=["kombu", "amqp", "socket"],
)
def test_a_broker_error_fails_the_replay_and_undoes_it(replays, error):
    order = OrderFactory(status=OrderStatus.FAILED, failed_from=OrderStatus.PENDING)
    dead_letter = DeadLetterFactory(order_id=order.id)
    replays.error = error

    with pytest.raises(ReplayFailed) as failed:
        deadletters.replay(dead_letter_id=dead_letter.pk, actor=UserFactory())

    assert failed.value.__cause__ is error
    # The message is published after the resume commits, so a refused publish is undone
    # by failing the order again; its history shows the attempt.
    order = reload(order)
    assert (order.status, order.failed_from) == (OrderStatus.FAILED, OrderStatus.PENDING)
    assert list(order.events.order_by("version").values_list("to_status", flat=True)) == [
        OrderStatus.FAILED,
        OrderStatus.PENDING,
        OrderStatus.FAILED,
    ]
    dead_letter = reload(dead_letter)
    assert (dead_letter.status, dead_letter.replay_count) == (DeadLetter.Status.NEW, 0)


# discard() ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_discard_marks_it_handled_and_who_did_it(replays):
    order = OrderFactory(status=OrderStatus.FAILED, failed_from=OrderStatus.PENDING)
    dead_letter = DeadLetterFactory(order_id=order.id)
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


@pytest.mark.django_db(transaction=True)
def test_a_replay_is_published_only_after_the_resumed_order_is_committed(monkeypatch):
    """Published inside the transaction, the worker could see the order still FAILED."""
    order = OrderFactory(status=OrderStatus.FAILED, failed_from=OrderStatus.PENDING)
    dead_letter = DeadLetterFactory(order_id=order.id)
    seen = []

    def publish(dead_letter):
        seen.append((connection.in_atomic_block, Order.objects.get(pk=order.id).status))

    monkeypatch.setattr(deadletters, "_publish_to_queue", publish)

    deadletters.replay(dead_letter_id=dead_letter.pk, actor=None)

    assert seen == [(False, OrderStatus.PENDING)]
