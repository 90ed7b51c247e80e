"""The base error of every domain error in Orderflow, and the kinds the API answers by.

A domain error says what went wrong in its own terms (OrderNotFound) and, by its bases, of
which kind it is: retrying may help or not (TransientError, PermanentError, for tasks), the
thing is not there (NotFound), it cannot be done in its present state (Conflict), the
request contradicts an earlier one (Unprocessable). core/api/exceptions.py answers each kind
with its HTTP code, knowing no app; any other ApplicationError is a 400.
"""

from typing import Any


class ApplicationError(Exception):
    """A domain error: a message for people and extra data for programs and logs."""

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class TransientError(ApplicationError):
    """Worth retrying: the cause (a timeout, an outage) may be gone next time."""


class PermanentError(ApplicationError):
    """Retrying cannot help: the message is wrong or refers to nothing. It is dead-lettered."""


class NotFound(ApplicationError):
    """What was asked for does not exist, or the caller may not see it: HTTP 404."""


class Conflict(ApplicationError):
    """Not possible in the thing's present state: HTTP 409."""


class Unprocessable(ApplicationError):
    """Well formed, but it contradicts what was asked before: HTTP 422."""
