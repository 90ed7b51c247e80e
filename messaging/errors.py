"""The base error of every domain error in Orderflow."""

from typing import Any


class ApplicationError(Exception):
    """A domain error: a message for people and extra data for programs and logs."""

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}
