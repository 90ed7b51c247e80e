"""How other apps (the demo) change the fake gateway's data: planning its faults."""

from .models import FakeGatewayFault


def plan_fake_gateway_fault(*, order_ref: str, remaining: int, crash: bool = False) -> None:
    """Make the fake gateway fail its next `remaining` requests for this order (demos, tests).

    A timeout before charging, or with `crash`, the death of the process asking.
    """
    FakeGatewayFault.objects.create(order_ref=order_ref, remaining=remaining, crash=crash)
