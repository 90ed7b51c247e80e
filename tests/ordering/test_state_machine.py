"""The transition table of DESIGN.md, checked over every pair of statuses, without a database."""

import itertools

import pytest

from ordering.state_machine import TERMINAL_STATUSES, OrderStatus, can_transition

S = OrderStatus

# Written out from DESIGN.md independently of ALLOWED_TRANSITIONS, so a change to either shows.
EXPECTED_ALLOWED = {
    (S.PENDING, S.APPROVED),
    (S.PENDING, S.CANCELED_FRAUD),
    (S.PENDING, S.CANCELED),
    (S.PENDING, S.FAILED),
    (S.APPROVED, S.PROCESSED),
    (S.APPROVED, S.PAYMENT_FAILED),
    (S.APPROVED, S.FAILED),
}
NOT_FAILED = [s for s in S if s != S.FAILED]


@pytest.mark.parametrize(("current", "to"), list(itertools.product(NOT_FAILED, S)))
def test_transition_table_from_every_status_but_failed(current, to):
    assert can_transition(current=current, to=to) == ((current, to) in EXPECTED_ALLOWED)


@pytest.mark.parametrize("failed_from", [S.PENDING, S.APPROVED])
@pytest.mark.parametrize("to", list(S))
def test_failed_order_may_only_return_to_the_status_it_failed_from(failed_from, to):
    assert can_transition(current=S.FAILED, to=to, failed_from=failed_from) == (to == failed_from)


def test_failed_order_without_failed_from_goes_nowhere():
    assert not any(can_transition(current=S.FAILED, to=to, failed_from="") for to in S)


def test_terminal_statuses_are_the_four_of_the_design():
    assert {S.PROCESSED, S.CANCELED_FRAUD, S.PAYMENT_FAILED, S.CANCELED} == TERMINAL_STATUSES


def test_unknown_status_goes_nowhere():
    assert not can_transition(current="SHIPPED", to=S.APPROVED)
