"""The steps table (ordering/steps.py): walked without a database."""

import pytest

from config.celery import app
from messaging.topology import STEP_QUEUES
from ordering.pipeline import OrderStepTask
from ordering.state_machine import TERMINAL_STATUSES, OrderStatus
from ordering.steps import STEPS, Step, UnknownStep, check_table, step_at, step_of_task

S = OrderStatus


def test_the_table_agrees_with_the_state_machine():
    check_table()


def test_every_path_through_the_steps_ends_in_a_terminal_status():
    paths, todo = [], [[S.PENDING]]
    while todo:
        path = todo.pop()
        step = step_at(path[-1])
        if step is None:
            assert path[-1] in TERMINAL_STATUSES, path
            paths.append(path)
            continue
        assert len(path) <= len(STEPS) + 1, f"the steps loop: {path}"
        todo.extend([*path, outcome] for outcome in sorted(step.outcomes))
    assert sorted(paths) == sorted(
        [
            [S.PENDING, S.CANCELED_FRAUD],
            [S.PENDING, S.APPROVED, S.PAYMENT_FAILED],
            [S.PENDING, S.APPROVED, S.PROCESSED],
        ]
    )


@pytest.mark.parametrize("step", STEPS.values(), ids=lambda step: step.task_name)
def test_each_step_is_an_order_step_task_on_a_declared_work_queue(step: Step):
    app.loader.import_default_modules()
    task = app.tasks[step.task_name]
    assert isinstance(task, OrderStepTask)
    assert step.task_name.split(".")[0] in STEP_QUEUES
    assert step_of_task(step.task_name) is step


def test_the_services_name_their_own_rows():
    from billing.services import STEP as BILLING
    from fraud.services import STEP as FRAUD

    assert (step_of_task(FRAUD).status, step_of_task(BILLING).status) == (S.PENDING, S.APPROVED)


def test_a_task_that_is_no_step_is_a_programming_error():
    with pytest.raises(UnknownStep, match=r"'billing\.refund' is not a step"):
        step_of_task("billing.refund")


@pytest.mark.parametrize("status", sorted(TERMINAL_STATUSES | {S.FAILED}))
def test_no_step_runs_in_a_terminal_or_failed_status(status):
    assert step_at(status) is None


def test_a_table_whose_outcome_the_state_machine_forbids_is_refused(monkeypatch):
    wrong = Step(S.PENDING, "fraud.screen_order", frozenset({S.PROCESSED}))
    monkeypatch.setitem(STEPS, S.PENDING, wrong)
    with pytest.raises(AssertionError):
        check_table()


def test_a_table_with_a_waiting_status_and_no_step_is_refused(monkeypatch):
    monkeypatch.delitem(STEPS, S.APPROVED)
    with pytest.raises(AssertionError):
        check_table()
