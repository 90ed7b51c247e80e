"""What ordering tells API clients through webhooks: an event per change of an order's
status, `order.<status>` (order.approved, order.processed...), with the order as the API
shows it. The events are registered with webhooks when the app loads (apps.py)."""

from webhooks import events, services

from .api.serializers import OrderSerializer
from .models import Order
from .state_machine import OrderStatus, public_description

# The order as the API shows it. One instance serves every event: building a serializer's
# fields costs fifteen times what rendering with them does, and rendering keeps no state.
_ORDER_AS_THE_API_SHOWS_IT = OrderSerializer()


def event_type_of(status: str) -> str:
    return f"order.{status.lower()}"


def register_event_types() -> None:
    for status in OrderStatus:
        events.register(event_type_of(status), f"An order became {status.value}.")


def status_changed(order: Order, *, from_status: str) -> None:
    """Write the webhook deliveries of the change, in its transaction."""
    services.emit(
        event_type=event_type_of(order.status),
        owner_id=order.buyer_id,
        subject_id=order.id,
        subject_version=order.version,
        data=lambda: {
            "order": _ORDER_AS_THE_API_SHOWS_IT.to_representation(order),
            "previous_status": from_status,
            "description": public_description(from_status=from_status, to_status=order.status),
        },
    )
