"""A model-based test of the order life cycle: Hypothesis' stateful testing on the real database.

The rules play the broker and the operators: publish outbox rows, duplicate copies, deliver
any copy in any order (so copies arrive late and out of order), let a copy die (its retries
ran out: it is recorded as the dead-letter consumer records it), replay any dead letter,
cancel orders, make the gateway lose an answer after charging, and restart a consumer
between the gateway call and the settlement. After every rule the promises must hold:

- nothing is charged twice;
- every order's history is a path in the state machine;
- every non-terminal order has a way forward: an unpublished outbox row or a live copy of its
  current step's message, or, if it is FAILED, a NEW dead letter of the step it failed at.

The budget is fixed (HYPOTHESIS_SETTINGS). Each run draws a seed; on a failure Hypothesis
prints the steps and the test names the seed: `ORDERFLOW_MODEL_SEED=<seed>` runs the same
examples again (with `ORDERFLOW_MODEL_SHRINK=1`, shrunk to the fewest steps that fail).
"""

import contextlib
import os
import random
import uuid
from dataclasses import dataclass
from datetime import timedelta
from unittest import mock

import pytest
from django.db import transaction
from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from billing import services as billing
from billing.errors import GatewayTimeout
from core.errors import ApplicationError
from fakegateway.models import FakeGatewayCharge, FakeGatewayFault
from fraud import services as fraud
from messaging import deadletters
from messaging.models import DeadLetter, OutboxMessage, ProcessedMessage
from ordering import services as orders
from ordering.models import Order, OrderEvent
from ordering.state_machine import TERMINAL_STATUSES, OrderStatus, can_transition
from ordering.steps import step_at

from ..factories import UserFactory
from ..messaging.test_deadletters import DIED_AT, celery_message

S = OrderStatus
STEPS = {"fraud.screen_order": fraud.screen, "billing.charge_order": billing.charge}
# Prices that reach each end: processed, declined by the card (over 5,000), fraud (over 10,000).
PRICES = [2500, 600_000, 2_000_000]  # in cents

HYPOTHESIS_SETTINGS = settings(
    max_examples=150,
    stateful_step_count=30,
    deadline=None,
    database=None,  # every run explores afresh from its seed; nothing kept between runs
    # Shrinking a failure replays hundreds of examples, minutes on a database; in the suite the
    # seed is enough. ORDERFLOW_MODEL_SHRINK=1 shrinks it to the shortest steps that fail.
    phases=[Phase.explicit, Phase.generate]
    + ([Phase.shrink] if os.environ.get("ORDERFLOW_MODEL_SHRINK") == "1" else []),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@dataclass(frozen=True)
class Copy:
    """A copy of a message on the broker: published, not yet acked."""

    task_name: str
    message_id: uuid.UUID
    order_id: uuid.UUID


class ConsumerRestarted(Exception):
    """The consumer died between the gateway's answer and the settlement."""


class OrderLifecycle(RuleBasedStateMachine):
    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        self.in_flight: list[Copy] = []
        self.restart_next_settlement = False
        self.deaths = 0

    @initialize(target=orders, price=st.sampled_from(PRICES))
    def clean_world_with_an_order(self, price: int) -> uuid.UUID:
        # Each example runs in a savepoint of the test's transaction, rolled back at the end.
        self.savepoint = transaction.savepoint()
        self.buyer = UserFactory()
        return self.place_order(price)

    def teardown(self) -> None:
        if hasattr(self, "savepoint"):
            transaction.savepoint_rollback(self.savepoint)

    # --- the API and the buyer ---------------------------------------------------------------

    @rule(target=orders, price=st.sampled_from(PRICES))
    def place_order(self, price: int) -> uuid.UUID:
        return orders.create_order(
            buyer=self.buyer,
            product_name="Teapot",
            quantity=1,
            unit_price_minor=price,
            currency="EUR",
        ).order.id

    @rule(order_id=orders)
    def buyer_cancels(self, order_id: uuid.UUID) -> None:
        with contextlib.suppress(ApplicationError):  # not PENDING any more: a 409 in the API
            orders.cancel_order(order_id=order_id, actor=self.buyer)

    # --- the broker --------------------------------------------------------------------------

    @precondition(lambda self: OutboxMessage.objects.filter(published_at__isnull=True).exists())
    @rule(data=st.data(), copies=st.integers(1, 2))
    def publish(self, data, copies: int) -> None:
        """The after-commit publish or the relay: an unpublished row becomes a copy, or two
        when both publish it (they may race, and a confirm may be lost after the publish)."""
        rows = list(OutboxMessage.objects.filter(published_at__isnull=True).order_by("created_at"))
        row = data.draw(st.sampled_from(rows))
        OutboxMessage.objects.filter(pk=row.pk).update(published_at=row.created_at)
        copy = Copy(row.task_name, row.id, uuid.UUID(row.kwargs["order_id"]))
        self.in_flight.extend([copy] * copies)

    @precondition(lambda self: self.in_flight)
    @rule(data=st.data())
    def duplicate(self, data) -> None:
        """Published twice (after commit and by the relay), or redelivered."""
        self.in_flight.append(data.draw(st.sampled_from(self.in_flight)))

    @precondition(lambda self: self.in_flight)
    @rule(data=st.data())
    def deliver(self, data) -> None:
        """Any copy, not only the oldest: late and out-of-order deliveries."""
        copy = self.in_flight.pop(data.draw(st.integers(0, len(self.in_flight) - 1)))
        restart, self.restart_next_settlement = self.restart_next_settlement, False
        settle = mock.patch.object(billing, "_settle", side_effect=ConsumerRestarted)
        try:
            with settle if restart else contextlib.nullcontext():
                STEPS[copy.task_name](order_id=copy.order_id, message_id=copy.message_id)
        except (GatewayTimeout, ConsumerRestarted):
            self.in_flight.append(copy)  # retried later, or redelivered after the restart

    @precondition(lambda self: self.in_flight)
    @rule(data=st.data())
    def dies(self, data) -> None:
        """A copy whose retries ran out (a database outage, say): dead-lettered, recorded."""
        copy = self.in_flight.pop(data.draw(st.integers(0, len(self.in_flight) - 1)))
        message = celery_message(
            order_id=copy.order_id,
            task=copy.task_name,
            message_id=str(copy.message_id),
            queue=copy.task_name.split(".")[0],
        )
        self.deaths += 1  # each death of a copy is its own, with its own time in x-death
        message["headers"]["x-death"][0]["time"] = DIED_AT + timedelta(seconds=self.deaths)
        deadletters.record(deadletters.read_death(**message))

    @rule()
    def gateway_loses_its_next_answer(self) -> None:
        FakeGatewayFault.objects.create(remaining=1, after_charge=True)

    @rule()
    def consumer_dies_after_the_next_gateway_answer(self) -> None:
        self.restart_next_settlement = True

    # --- operators ---------------------------------------------------------------------------

    @precondition(lambda self: DeadLetter.objects.exists())
    @rule(data=st.data())
    def operator_replays(self, data) -> None:
        dead_letter = data.draw(st.sampled_from(list(DeadLetter.objects.order_by("pk"))))
        with contextlib.suppress(ApplicationError):  # refused: the order has passed that step
            deadletters.replay(dead_letter_id=dead_letter.pk, actor=None)

    # --- the promises ------------------------------------------------------------------------

    @invariant()
    def nothing_is_charged_twice(self) -> None:
        charged = FakeGatewayCharge.objects.filter(outcome=FakeGatewayCharge.Outcome.CHARGED)
        refs = list(charged.values_list("order_ref", flat=True))
        assert len(refs) == len(set(refs)), f"charged twice: {refs}"

    @invariant()
    def every_history_is_a_path_in_the_state_machine(self) -> None:
        current: dict[uuid.UUID, tuple[str, str]] = {}  # order -> (status, failed_from)
        for event in OrderEvent.objects.order_by("order_id", "version"):
            status, failed_from = current.get(event.order_id, ("", ""))
            assert event.from_status == status, event
            if status:
                assert can_transition(
                    current=status, to=event.to_status, failed_from=failed_from
                ), f"{event}: not a transition of the state machine"
            failed_from = status if event.to_status == S.FAILED else ""
            current[event.order_id] = (event.to_status, failed_from)
        for order in Order.objects.all():
            assert current[order.id] == (order.status, order.failed_from), order

    @invariant()
    def every_order_that_is_not_done_has_a_way_forward(self) -> None:
        claimed = set(ProcessedMessage.objects.values_list("consumer", "message_id"))
        live = {
            (copy.task_name, copy.order_id)
            for copy in self.in_flight
            if (copy.task_name, copy.message_id) not in claimed
        }
        waiting = {
            (task, uuid.UUID(kwargs["order_id"]))
            for task, kwargs in OutboxMessage.objects.filter(published_at__isnull=True).values_list(
                "task_name", "kwargs"
            )
        }
        to_replay = set(
            DeadLetter.objects.filter(status=DeadLetter.Status.NEW).values_list(
                "task_name", "subject_id"
            )
        )
        for order in Order.objects.exclude(status__in=TERMINAL_STATUSES):
            if order.status == S.FAILED:
                step = step_at(order.failed_from)
                assert (step.task_name, order.id) in to_replay, f"{order}: no NEW dead letter"
            else:
                step = (step_at(order.status).task_name, order.id)
                assert step in live | waiting, f"{order}: no message of {step[0]} on its way"


@pytest.mark.django_db
def test_the_order_life_cycle_keeps_its_promises_whatever_the_broker_and_operators_do():
    run_seed = int(os.environ.get("ORDERFLOW_MODEL_SEED") or random.randrange(2**32))
    try:
        run_state_machine_as_test(seed(run_seed)(OrderLifecycle), settings=HYPOTHESIS_SETTINGS)
    except BaseException as failure:
        raise AssertionError(f"rerun with ORDERFLOW_MODEL_SEED={run_seed}") from failure
