"""The base error of every domain error in Orderflow."""

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
