"""An order's history as its buyer reads it (public descriptions) and as staff do (causes)."""

import json

import pytest
from rest_framework.test import APIClient

from ordering.models import Order, OrderEvent
from ordering.state_machine import (
    ALLOWED_TRANSITIONS,
    PUBLIC_DESCRIPTIONS,
    UNDESCRIBED_CHANGE,
    OrderStatus,
    public_description,
)

from ..factories import OrderFactory, UserFactory

S = OrderStatus

# Causes as the pipeline, the admin and the dead-letter consumer write them: all internal.
FRAUD_RULE = "fraud screening: buyer_on_blocklist; amount_over_limit"
STAFF_CANCEL = "canceled by staff_alice"
DEAD_LETTER = "billing.charge_order dead-lettered: delivery_limit (WorkerLostError)"
INTERNALS = ["buyer_on_blocklist", "amount_over_limit", "staff_alice", "dead-lettered", "Worker"]


def test_every_allowed_transition_and_the_creation_have_a_description():
    pairs = {("", S.PENDING)} | {
        (source, target) for source, targets in ALLOWED_TRANSITIONS.items() for target in targets
    }

    assert set(PUBLIC_DESCRIPTIONS) == pairs
    assert UNDESCRIBED_CHANGE not in PUBLIC_DESCRIPTIONS.values()


def test_a_change_the_table_does_not_know_still_gets_a_public_description():
    assert public_description(from_status=S.PROCESSED, to_status=S.PENDING) == UNDESCRIBED_CHANGE


def _history(order: Order, *steps: tuple[str, str, str]) -> Order:
    """Append events (from, to, cause) to an order's history, as transitions write them; the
    order's own status does not matter to what its history shows."""
    for version, (source, target, cause) in enumerate(steps, start=order.version + 1):
        OrderEvent.objects.create(
            order=order, from_status=source, to_status=target, cause=cause, version=version
        )
    return order


def _detail(user, order: Order) -> dict:
    client = APIClient()
    client.force_authenticate(user)
    response = client.get(f"/api/orders/{order.id}/")
    assert response.status_code == 200, response.content
    return response.json()


FRAUD_CANCELED = [(S.PENDING, S.CANCELED_FRAUD, FRAUD_RULE)]
STAFF_CANCELED = [(S.PENDING, S.CANCELED, STAFF_CANCEL)]
DEAD_LETTERED = [
    (S.PENDING, S.APPROVED, "fraud screening: passed"),
    (S.APPROVED, S.FAILED, DEAD_LETTER),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("steps", "descriptions"),
    [
        (FRAUD_CANCELED, ["Order placed", "Canceled: we could not accept this order"]),
        (STAFF_CANCELED, ["Order placed", "Canceled"]),
        (DEAD_LETTERED, ["Order placed", "Approved", "Processing was interrupted; we are on it"]),
    ],
)
def test_a_buyer_reads_public_descriptions_and_no_internal_cause(buyer, steps, descriptions):
    order = _history(OrderFactory(buyer=buyer), *steps)

    body = _detail(buyer, order)

    assert [event["description"] for event in body["history"]] == descriptions
    assert [event["cause"] for event in body["history"]] == [None] * len(descriptions)
    text = json.dumps(body)
    assert not [internal for internal in INTERNALS if internal in text]


@pytest.mark.django_db
def test_staff_read_the_internal_cause_beside_the_description():
    staff = UserFactory(is_staff=True)
    order = _history(
        OrderFactory(),
        (S.PENDING, S.APPROVED, "fraud screening: passed"),
        (S.APPROVED, S.FAILED, DEAD_LETTER),
        (S.FAILED, S.APPROVED, "billing.charge_order replayed"),
        (S.APPROVED, S.PAYMENT_FAILED, "billing: card declined"),
    )

    history = _detail(staff, order)["history"]

    assert [(event["description"], event["cause"]) for event in history] == [
        ("Order placed", "created"),
        ("Approved", "fraud screening: passed"),
        ("Processing was interrupted; we are on it", DEAD_LETTER),
        ("Processing resumed", "billing.charge_order replayed"),
        ("Payment declined", "billing: card declined"),
    ]
