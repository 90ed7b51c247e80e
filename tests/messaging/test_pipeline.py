"""The failure policy of every pipeline task, its queues and the broker topology; no broker."""

import uuid

import pytest
from celery.exceptions import Reject
from django.conf import settings
from django.db import InterfaceError
from django.db import OperationalError as DatabaseUnavailable
from kombu.exceptions import OperationalError as KombuOperationalError

import billing.tasks  # noqa: F401 - registers billing.charge_order, as the worker does
import fraud.tasks  # noqa: F401 - registers fraud.screen_order
from config.celery import app
from core.errors import PermanentError, TransientError
from messaging import topology
from messaging.pipeline import (
    DEAD_LETTER,
    FAIL,
    FAILURE_POLICY,
    RETRY,
    InvalidMessage,
    PipelineTask,
    failure_policy,
)

PIPELINE_TASKS = {"fraud.screen_order": "fraud", "billing.charge_order": "billing"}


def test_pipeline_task_acks_late_and_rejects_on_worker_loss():
    assert PipelineTask.acks_late is True
    assert PipelineTask.reject_on_worker_lost is True


def test_pipeline_task_retries_follow_the_retry_settings():
    assert PipelineTask.retry_backoff == settings.RETRY_BASE_SECONDS
    assert PipelineTask.retry_backoff_max == settings.RETRY_MAX_SECONDS
    assert PipelineTask.retry_jitter is True
    # RETRY_MAX_ATTEMPTS counts every try; Celery's max_retries does not count the first.
    assert PipelineTask.max_retries == settings.RETRY_MAX_ATTEMPTS - 1


@pytest.mark.parametrize("error", [TransientError, DatabaseUnavailable])
def test_pipeline_task_retries_transient_and_database_errors(error):
    assert error in PipelineTask.autoretry_for


def test_pipeline_task_does_not_retry_permanent_errors():
    assert not any(issubclass(PermanentError, kind) for kind in PipelineTask.autoretry_for)


@pytest.mark.parametrize("name", PIPELINE_TASKS)
def test_pipeline_tasks_are_registered_on_pipeline_task(name):
    task = app.tasks[name]

    assert isinstance(task, PipelineTask)
    # A task that fails for good is rejected (dead-lettered), never acked and forgotten.
    assert (task.acks_late, task.reject_on_worker_lost) == (True, True)
    assert (task.acks_on_failure, task.acks_on_timeout) == (False, False)


@pytest.mark.parametrize(("name", "queue"), PIPELINE_TASKS.items())
def test_pipeline_tasks_route_to_their_queue(name, queue):
    route = app.amqp.router.route({}, name)

    assert route["queue"].name == queue
    assert (route["queue"].exchange.name, route["queue"].exchange.type) == (queue, "topic")
    assert app.conf.task_routes[f"{queue}.*"] == {"queue": queue}


def test_an_invalid_message_is_permanent():
    assert issubclass(InvalidMessage, PermanentError)
    assert not issubclass(InvalidMessage, TransientError)


def deliver(task, *args, message_id=None, **kwargs):
    """Runs the task as the worker does for one message: its request, then its __call__."""
    task.push_request(id=message_id or str(uuid.uuid4()), **kwargs.pop("request", {}))
    try:
        return task(*args, **kwargs)
    finally:
        task.pop_request()


BAD_PAYLOADS = {
    "no order id": ((), {}, "order_id: This field is required"),
    "order id not a UUID": ((), {"order_id": "not-a-uuid"}, "order_id: Must be a valid UUID"),
    "order id a number": ((), {"order_id": 42}, "order_id: Must be a valid UUID"),
    "order id an object": ((), {"order_id": {"id": 1}}, "order_id: Must be a valid UUID"),
    "order id null": ((), {"order_id": None}, "order_id: This field may not be null"),
    "an amount smuggled in": (
        (),
        {"order_id": str(uuid.uuid4()), "amount": "0.01"},
        "unknown fields: amount",
    ),
    "positional arguments": ((str(uuid.uuid4()),), {}, "positional arguments are not accepted"),
}


@pytest.mark.parametrize("name", PIPELINE_TASKS)
@pytest.mark.parametrize(("args", "kwargs", "reason"), BAD_PAYLOADS.values(), ids=BAD_PAYLOADS)
def test_a_payload_that_breaks_the_schema_is_rejected_before_any_work(name, args, kwargs, reason):
    # No database fixture: touching the database before rejecting would fail the test.
    with pytest.raises(Reject) as rejected:
        deliver(app.tasks[name], *args, **kwargs)

    assert rejected.value.requeue is False
    assert reason in str(rejected.value.reason)


@pytest.mark.parametrize("link", ["callbacks", "errbacks", "chain", "chord", "group"])
def test_a_message_that_links_other_tasks_is_rejected(link):
    linked = [{"task": "billing.charge_order", "kwargs": {"order_id": str(uuid.uuid4())}}]

    with pytest.raises(Reject) as rejected:
        deliver(
            app.tasks["fraud.screen_order"],
            order_id=str(uuid.uuid4()),
            request={link: linked},
        )

    assert f"linked tasks are not accepted: {link}" in str(rejected.value.reason)


@pytest.mark.parametrize("message_id", ["x; DROP", "i" * 256], ids=["odd", "overlong"])
def test_a_message_whose_id_is_not_a_uuid_is_rejected(message_id):
    with pytest.raises(Reject) as rejected:
        deliver(app.tasks["fraud.screen_order"], message_id=message_id, order_id=str(uuid.uuid4()))

    assert "the message id is not a UUID" in str(rejected.value.reason)
    assert len(str(rejected.value.reason)) < 200  # logged: the id is cut short


def test_the_task_receives_the_validated_order_id_as_a_uuid():
    order_id = uuid.uuid4()
    task = app.tasks["fraud.screen_order"]
    task.push_request(id=str(uuid.uuid4()))
    try:
        assert task.validated_payload((), {"order_id": str(order_id)}) == {"order_id": order_id}
    finally:
        task.pop_request()


def test_messages_are_json_only_and_publishes_are_confirmed():
    assert app.conf.accept_content == ["json"]
    assert (app.conf.task_serializer, app.conf.result_serializer) == ("json", "json")
    assert app.conf.broker_transport_options["confirm_publish"] is True


def test_work_queues_are_durable_quorum_queues_on_topic_exchanges_that_dead_letter():
    queues = topology.work_queues()

    assert [queue.name for queue in queues] == ["fraud", "billing", "maintenance", "webhooks"]
    for queue in queues:
        assert queue.durable
        assert (queue.exchange.name, queue.exchange.type, queue.routing_key) == (
            queue.name,
            "topic",
            queue.name,
        )
        arguments = queue.queue_arguments
        assert arguments["x-queue-type"] == "quorum"
        assert arguments["x-dead-letter-exchange"] == "dead_letter"
        assert arguments["x-delivery-limit"] == settings.BROKER_DELIVERY_LIMIT


def test_the_delivery_limit_comes_from_the_setting(settings):
    settings.BROKER_DELIVERY_LIMIT = 3

    assert {q.queue_arguments["x-delivery-limit"] for q in topology.work_queues()} == {3}


def test_the_app_consumes_the_work_queues_of_the_topology():
    assert [queue.name for queue in app.conf.task_queues] == [
        "fraud",
        "billing",
        "maintenance",
        "webhooks",
    ]
    for queue in app.conf.task_queues:
        assert queue.queue_arguments == topology.work_queue(queue.name).queue_arguments


def test_dead_letters_go_to_a_quorum_queue_bound_to_every_routing_key():
    queue = topology.dead_letter_queue()

    assert (queue.name, queue.durable, queue.routing_key) == ("dead_letter", True, "#")
    assert (queue.exchange.name, queue.exchange.type) == ("dead_letter", "topic")
    assert queue.queue_arguments["x-queue-type"] == "quorum"


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (InvalidMessage("bad"), DEAD_LETTER),
        (PermanentError("gone"), DEAD_LETTER),
        (TransientError("later"), RETRY),
        (DatabaseUnavailable("down"), RETRY),
        (InterfaceError("closed"), RETRY),
        (KombuOperationalError("broker away"), RETRY),
        (ConnectionResetError("reset"), RETRY),
        (TimeoutError("slow"), RETRY),
        (ValueError("a bug"), FAIL),
    ],
)
def test_the_failure_policy_decides_by_the_first_matching_row(error, outcome):
    assert failure_policy(error) == outcome


def test_every_retried_error_is_in_autoretry_and_nothing_else_is():
    retried = {kind for kind, then in FAILURE_POLICY if then == RETRY}
    assert set(PipelineTask.autoretry_for) == retried
