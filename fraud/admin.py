from django.contrib import admin

from .models import BlockedBuyer, FraudAssessment


@admin.register(FraudAssessment)
class FraudAssessmentAdmin(admin.ModelAdmin):
    """Read-only: assessments are written by fraud screening alone."""

    list_display = ["order", "verdict", "score", "assessed_at"]
    list_filter = ["verdict"]
    search_fields = ["order__id", "order__buyer__username"]
    readonly_fields = ["order", "verdict", "score", "reasons", "message_id", "assessed_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a record of a decision; the web's database role cannot delete it


@admin.register(BlockedBuyer)
class BlockedBuyerAdmin(admin.ModelAdmin):
    """The blocklist: orders by these buyers are canceled by fraud screening."""

    list_display = ["buyer", "reason", "created_at"]
    search_fields = ["buyer__username", "buyer__email", "reason"]
    autocomplete_fields = ["buyer"]
