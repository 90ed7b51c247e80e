"""Errors of the ordering domain; the API maps them to HTTP codes in ordering/api/exceptions.py."""

from core.errors import ApplicationError, PermanentError


class OrderNotFound(PermanentError):
    """No order with that id exists, or the caller may not see it."""


class OrderNotCancelable(ApplicationError):
    """The buyer asked to cancel an order that is no longer PENDING."""


class IdempotencyKeyReused(ApplicationError):
    """An Idempotency-Key was sent again with a different order body."""


class StepNotReplayable(ApplicationError):
    """A dead letter's step cannot be replayed: its order has passed the step, or is gone."""
