"""Errors of billing and its payment gateway."""

from core.errors import ApplicationError, PermanentError, TransientError


class PaymentDeclined(ApplicationError):
    """The gateway refused the charge: a business outcome (PAYMENT_FAILED), not a failure."""


class GatewayTimeout(TransientError):
    """No answer in time: the charge may or may not have happened; retry with the same key."""


class GatewayUnavailable(TransientError):
    """The gateway answered with a server error (5xx)."""


class GatewayRequestRejected(PermanentError):
    """The gateway refused the request itself, e.g. an idempotency key reused for another amount."""
