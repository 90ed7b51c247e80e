from django.contrib import admin

from .models import Charge, FakeGatewayCharge, FakeGatewayFault


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Charge)
class ChargeAdmin(ReadOnlyAdmin):
    list_display = ["order", "amount", "currency", "status", "attempts", "updated_at"]
    list_filter = ["status", "currency"]
    search_fields = ["order__id", "gateway_reference"]


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


@admin.register(FakeGatewayFault)
class FakeGatewayFaultAdmin(admin.ModelAdmin):
    """Plan gateway timeouts, to watch retries at work in a demo."""

    list_display = ["remaining", "order_ref", "after_charge", "crash", "created_at"]
