"""Errors of the ordering domain; their kinds (core/errors.py) give their HTTP codes."""

from core.errors import ApplicationError, Conflict, NotFound, PermanentError, Unprocessable


class OrderNotFound(PermanentError, NotFound):
    """No order with that id exists, or the caller may not see it."""


class OrderNotCancelable(Conflict):
    """The buyer asked to cancel an order that is no longer PENDING."""


class IdempotencyKeyReused(Unprocessable):
    """An Idempotency-Key was sent again with a different order body."""


class StepNotReplayable(ApplicationError):
    """A dead letter's step cannot be replayed: its order has passed the step, or is gone."""
