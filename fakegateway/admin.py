from django.contrib import admin

from billing.admin import ReadOnlyAdmin
from core import money

from .models import FakeGatewayCharge, FakeGatewayFault


@admin.register(FakeGatewayCharge)
class FakeGatewayChargeAdmin(ReadOnlyAdmin):
    """The fake gateway's ledger: what the provider would show on its dashboard."""

    list_display = [
        "reference",
        "order_ref",
        "amount",
        "currency",
        "outcome",
        "requests",
        "created_at",
    ]
    list_filter = ["outcome"]
    search_fields = ["order_ref", "idempotency_key", "reference"]

    @admin.display(description="amount", ordering="amount_minor")
    def amount(self, charge: FakeGatewayCharge) -> str:
        """In major units of its currency; stored in minor units."""
        return str(money.to_major(charge.amount_minor, charge.currency))


@admin.register(FakeGatewayFault)
class FakeGatewayFaultAdmin(admin.ModelAdmin):
    """Plan gateway timeouts, to watch retries at work in a demo."""

    list_display = ["remaining", "order_ref", "after_charge", "crash", "created_at"]
