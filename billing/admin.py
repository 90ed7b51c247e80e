from django.contrib import admin

from core import money

from .models import Charge


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

    @admin.display(description="amount", ordering="amount_minor")
    def amount(self, charge: Charge) -> str:
        """In major units of its currency; stored in minor units."""
        return str(money.to_major(charge.amount_minor, charge.currency))
