"""The order pipeline as data: which step runs when an order enters which status.

One row per step, beside the state machine (state_machine.py) whose transitions it follows.
A step's message, its dead letter and its replay all know their step through this table, so
each can ask "is this step still due?": the order is still in the step's status. Adding a
step is a row here, a service that decides its outcome and a task that calls the service
(docs/design.md walks through one).

Database-free on purpose, like the state machine: tests walk the table without a database.
"""

from dataclasses import dataclass

from .state_machine import ALLOWED_TRANSITIONS, TERMINAL_STATUSES, OrderStatus

S = OrderStatus


@dataclass(frozen=True)
class Step:
    """The task that runs while an order is in `status`, and the statuses it may produce."""

    status: OrderStatus
    task_name: str
    outcomes: frozenset[OrderStatus]


STEPS: dict[OrderStatus, Step] = {
    step.status: step
    for step in (
        Step(S.PENDING, "fraud.screen_order", frozenset({S.APPROVED, S.CANCELED_FRAUD})),
        Step(S.APPROVED, "billing.charge_order", frozenset({S.PROCESSED, S.PAYMENT_FAILED})),
    )
}

_STEP_OF_TASK: dict[str, Step] = {step.task_name: step for step in STEPS.values()}


class UnknownStep(LookupError):
    """A task name that is no step of the order pipeline (a programming error)."""


def step_at(status: str) -> Step | None:
    """The step that runs while an order is in `status`; None when no step does."""
    return STEPS.get(status)


def step_of_task(task_name: str) -> Step:
    """The step a task carries out."""
    try:
        return _STEP_OF_TASK[task_name]
    except KeyError:
        raise UnknownStep(f"{task_name!r} is not a step of the order pipeline") from None


def check_table() -> None:
    """Raise AssertionError unless the table agrees with the state machine.

    Each step's outcomes are transitions the state machine allows from its status; every
    outcome is terminal or the status of the next step; every status an order can wait in
    (neither terminal nor FAILED, which waits for an operator) has a step.
    """
    for status, step in STEPS.items():
        assert step.status == status, step
        assert step.outcomes <= ALLOWED_TRANSITIONS[status], step
        for outcome in step.outcomes:
            assert outcome in TERMINAL_STATUSES or outcome in STEPS, (step, outcome)
    waiting = set(OrderStatus) - TERMINAL_STATUSES - {S.FAILED}
    assert waiting == set(STEPS), waiting ^ set(STEPS)
