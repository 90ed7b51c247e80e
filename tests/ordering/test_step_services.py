"""complete_step(), fail_step() and resume_step(): a step's outcome, dead letter and replay."""

import uuid

import pytest

from messaging.models import OutboxMessage, ProcessedMessage
from ordering import services
from ordering.errors import OrderNotFound, StepNotReplayable
from ordering.models import Order
from ordering.state_machine import OrderStatus

from ..factories import OrderFactory

pytestmark = pytest.mark.django_db
S = OrderStatus
FRAUD, BILLING = "fraud.screen_order", "billing.charge_order"


def complete(order: Order, *, task=FRAUD, outcome=S.APPROVED, message_id=None, record=None):
    return services.complete_step(
        task_name=task,
        order_id=order.id,
        message_id=message_id or uuid.uuid4(),
        outcome=outcome,
        cause="test",
        record=record,
    )


def reload(order: Order) -> Order:
    order.refresh_from_db()
    return order


def test_a_due_step_applies_its_writes_moves_the_order_and_queues_the_next_step():
    order, message_id, recorded = OrderFactory(), uuid.uuid4(), []

    assert complete(order, message_id=message_id, record=lambda: recorded.append(True))

    order = reload(order)
    assert (order.status, order.version, recorded) == (S.APPROVED, 2, [True])
    assert order.events.latest("version").message_id == message_id
    assert list(OutboxMessage.objects.values_list("task_name", "kwargs")) == [
        (BILLING, {"order_id": str(order.id)})
    ]
    assert ProcessedMessage.objects.filter(consumer=FRAUD, message_id=message_id).exists()


def test_a_terminal_outcome_queues_nothing():
    order = OrderFactory(status=S.APPROVED)

    assert complete(order, task=BILLING, outcome=S.PROCESSED)

    assert reload(order).status == S.PROCESSED
    assert not OutboxMessage.objects.exists()


@pytest.mark.parametrize(
    ("task", "status"),
    [
        (FRAUD, S.APPROVED),
        (FRAUD, S.CANCELED),
        (FRAUD, S.FAILED),
        (BILLING, S.PENDING),
        (BILLING, S.PROCESSED),
    ],
)
def test_a_step_that_is_no_longer_due_writes_nothing(task, status):
    order = OrderFactory(status=status, failed_from=S.PENDING if status == S.FAILED else "")
    outcome = S.APPROVED if task == FRAUD else S.PROCESSED
    recorded = []

    assert not complete(order, task=task, outcome=outcome, record=lambda: recorded.append(1))

    assert (reload(order).status, order.version, recorded) == (status, 1, [])
    assert not OutboxMessage.objects.exists()
    assert not ProcessedMessage.objects.exists()


def test_a_message_already_applied_is_not_applied_again_even_when_its_step_is_due():
    order, message_id, recorded = OrderFactory(), uuid.uuid4(), []
    ProcessedMessage.objects.create(consumer=FRAUD, message_id=message_id)

    assert not complete(order, message_id=message_id, record=lambda: recorded.append(1))

    assert (reload(order).status, order.version, recorded) == (S.PENDING, 1, [])
    assert not OutboxMessage.objects.exists()


def test_the_claim_is_per_step():
    """One message id claimed by fraud does not stop billing: claims are per consumer."""
    order, message_id = OrderFactory(status=S.APPROVED), uuid.uuid4()
    ProcessedMessage.objects.create(consumer=FRAUD, message_id=message_id)

    assert complete(order, task=BILLING, outcome=S.PROCESSED, message_id=message_id)


def test_writes_of_the_step_roll_back_with_a_failing_step():
    order = OrderFactory()

    def record():
        OrderFactory()  # a write of the step's own...
        raise RuntimeError("...then the step fails")

    with pytest.raises(RuntimeError):
        complete(order, record=record)

    assert (Order.objects.count(), reload(order).status) == (1, S.PENDING)
    assert not (OutboxMessage.objects.exists() or ProcessedMessage.objects.exists())


def test_the_next_step_s_message_is_written_in_the_transaction_of_the_outcome(monkeypatch):
    """Written after the commit, a failure there would leave an APPROVED order no message."""
    order = OrderFactory()

    def outbox_fails(**message):
        raise RuntimeError("the outbox row could not be written")

    monkeypatch.setattr(services.outbox, "enqueue", outbox_fails)
    with pytest.raises(RuntimeError):
        complete(order)

    assert (reload(order).status, order.version) == (S.PENDING, 1)
    assert not ProcessedMessage.objects.exists()


def test_an_outcome_the_step_cannot_produce_is_a_programming_error():
    with pytest.raises(ValueError, match=r"fraud\.screen_order cannot move an order to PROCESSED"):
        complete(OrderFactory(), outcome=S.PROCESSED)


def test_a_step_of_a_missing_order_raises_order_not_found():
    with pytest.raises(OrderNotFound):
        complete(Order(id=uuid.uuid4()))


# fail_step(): a step's dead letter -----------------------------------------------------------


@pytest.mark.parametrize(("task", "status"), [(FRAUD, S.PENDING), (BILLING, S.APPROVED)])
def test_a_dead_letter_of_the_due_step_fails_the_order_there(task, status):
    order = OrderFactory(status=status)

    assert services.fail_step(task_name=task, order_id=order.id, cause="dead")

    order = reload(order)
    assert (order.status, order.failed_from, order.version) == (S.FAILED, status, 2)


@pytest.mark.parametrize(
    ("task", "status"),
    [(FRAUD, S.APPROVED), (FRAUD, S.PROCESSED), (FRAUD, S.CANCELED), (BILLING, S.PENDING)],
)
def test_a_dead_letter_of_a_step_not_due_is_stale_and_changes_nothing(task, status):
    order = OrderFactory(status=status)

    assert not services.fail_step(task_name=task, order_id=order.id, cause="dead")

    assert (reload(order).status, order.version) == (status, 1)


def test_a_dead_letter_of_the_step_an_order_failed_at_is_current_and_changes_nothing():
    order = OrderFactory(status=S.FAILED, failed_from=S.APPROVED)

    assert services.fail_step(task_name=BILLING, order_id=order.id, cause="dead")
    assert not services.fail_step(task_name=FRAUD, order_id=order.id, cause="dead")

    assert reload(order).version == 1


def test_a_dead_letter_of_a_missing_order_is_current():
    assert services.fail_step(task_name=FRAUD, order_id=uuid.uuid4(), cause="dead")


# resume_step(): a step's replay --------------------------------------------------------------


@pytest.mark.parametrize(("task", "status"), [(FRAUD, S.PENDING), (BILLING, S.APPROVED)])
def test_a_replay_resumes_an_order_failed_at_its_step(task, status):
    order = OrderFactory(status=S.FAILED, failed_from=status)

    services.resume_step(task_name=task, order_id=order.id, cause="replayed")

    order = reload(order)
    assert (order.status, order.failed_from, order.version) == (status, "", 2)


def test_a_replay_of_the_step_an_order_is_at_leaves_it_there():
    order = OrderFactory(status=S.APPROVED)

    services.resume_step(task_name=BILLING, order_id=order.id, cause="replayed")

    assert (reload(order).status, order.version) == (S.APPROVED, 1)


@pytest.mark.parametrize(
    ("task", "status", "failed_from"),
    [
        (FRAUD, S.APPROVED, ""),
        (FRAUD, S.FAILED, S.APPROVED),
        (BILLING, S.PROCESSED, ""),
        (BILLING, S.FAILED, S.PENDING),
    ],
)
def test_a_replay_of_a_step_the_order_is_not_at_is_refused(task, status, failed_from):
    order = OrderFactory(status=status, failed_from=failed_from)

    with pytest.raises(StepNotReplayable, match=f"is {status}"):
        services.resume_step(task_name=task, order_id=order.id, cause="replayed")

    assert reload(order).version == 1


def test_a_replay_for_a_missing_order_is_refused():
    with pytest.raises(StepNotReplayable, match="does not exist"):
        services.resume_step(task_name=FRAUD, order_id=uuid.uuid4(), cause="replayed")
