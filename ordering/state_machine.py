"""The order state machine: statuses and the one table of allowed transitions.

Database-free on purpose, so every pair of states can be checked without a database.
`ordering.services.transition()` is the only code that applies a transition.
"""

from django.db import models


class OrderStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    APPROVED = "APPROVED", "Approved"
    PROCESSED = "PROCESSED", "Processed"
    CANCELED_FRAUD = "CANCELED_FRAUD", "Canceled (fraud)"
    PAYMENT_FAILED = "PAYMENT_FAILED", "Payment failed"
    CANCELED = "CANCELED", "Canceled"
    FAILED = "FAILED", "Failed"


S = OrderStatus

# from -> the statuses it may move to. FAILED is special: it may only go back to the
# status it failed from (a replayed dead letter resumes where the order stopped).
ALLOWED_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING: frozenset({S.APPROVED, S.CANCELED_FRAUD, S.CANCELED, S.FAILED}),
    S.APPROVED: frozenset({S.PROCESSED, S.PAYMENT_FAILED, S.FAILED}),
    S.FAILED: frozenset({S.PENDING, S.APPROVED}),
    S.PROCESSED: frozenset(),
    S.CANCELED_FRAUD: frozenset(),
    S.PAYMENT_FAILED: frozenset(),
    S.CANCELED: frozenset(),
}

TERMINAL_STATUSES = frozenset(
    status for status, targets in ALLOWED_TRANSITIONS.items() if not targets
)

# The statuses an order can fail from, i.e. the legal values of Order.failed_from.
FAILABLE_STATUSES = frozenset(
    s for s, targets in ALLOWED_TRANSITIONS.items() if S.FAILED in targets
)


def can_transition(*, current: str, to: str, failed_from: str = "") -> bool:
    """Whether an order in `current` may move to `to` (`failed_from` matters only for FAILED)."""
    if current == S.FAILED:
        return bool(failed_from) and to == failed_from
    return to in ALLOWED_TRANSITIONS.get(current, frozenset())


# What the buyer is told about each change of their order, by (from, to); "" is the creation.
# Public and stable: clients may show it as is. The cause of a change (a fraud rule, a staff
# user, a dead-letter reason) is internal and only staff see it (OrderEvent.cause).
PUBLIC_DESCRIPTIONS: dict[tuple[str, str], str] = {
    ("", S.PENDING): "Order placed",
    (S.PENDING, S.APPROVED): "Approved",
    (S.PENDING, S.CANCELED_FRAUD): "Canceled: we could not accept this order",
    (S.PENDING, S.CANCELED): "Canceled",
    (S.PENDING, S.FAILED): "Processing was interrupted; we are on it",
    (S.APPROVED, S.PROCESSED): "Paid and processed",
    (S.APPROVED, S.PAYMENT_FAILED): "Payment declined",
    (S.APPROVED, S.FAILED): "Processing was interrupted; we are on it",
    (S.FAILED, S.PENDING): "Processing resumed",
    (S.FAILED, S.APPROVED): "Processing resumed",
}
UNDESCRIBED_CHANGE = "Status updated"


def public_description(*, from_status: str, to_status: str) -> str:
    """What the buyer reads about one change of their order's status."""
    return PUBLIC_DESCRIPTIONS.get((from_status, to_status), UNDESCRIBED_CHANGE)
