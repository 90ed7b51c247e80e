"""The event types webhooks carry, as registered by the apps that emit them.

Webhooks know nothing of orders: `ordering` registers its event types here when it loads
(ordering/apps.py) and hands each event to `webhooks.services.emit()`.
"""

EVENT_TYPES: dict[str, str] = {}  # type -> what it means, for the docs and the admin


def register(event_type: str, description: str) -> None:
    EVENT_TYPES[event_type] = description


def is_known(event_type: str) -> bool:
    return event_type in EVENT_TYPES
