from django.contrib import admin

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
