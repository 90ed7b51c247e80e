"""Errors of webhooks; their kinds (core/errors.py) give their HTTP codes."""

from core.errors import ApplicationError, Conflict, NotFound, PermanentError, TransientError


class TargetRefused(PermanentError):
    """The URL is not one webhooks may be sent to (a private address, a bad scheme...)."""


class TargetUnresolvable(TransientError):
    """The URL's host did not resolve; DNS may answer next time."""


class UnknownEventTypes(ApplicationError):
    """An endpoint must want at least one event type, and only known ones."""


class EndpointNotFound(NotFound):
    """No such endpoint (or not the caller's)."""


class EndpointLimitReached(Conflict):
    """The owner has WEBHOOK_MAX_ENDPOINTS_PER_OWNER endpoints already."""


class DeliveryNotFound(PermanentError, NotFound):
    """No such delivery (or not the caller's); a message naming one is dead-lettered."""


class DeliveryNotRedeliverable(Conflict):
    """The delivery is on its way already, or its endpoint is disabled."""


class DeliveryFailed(TransientError):
    """The receiver did not take the delivery, and may next time (5xx, 408, 429, timeout)."""


class DeliveryRefused(PermanentError):
    """The receiver refused the delivery in a way retrying cannot change (other 4xx)."""
