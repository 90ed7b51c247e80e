from django.contrib import admin, messages

from core import money
from messaging.admin_search import UUIDSearchMixin

from . import selectors, services
from .errors import OrderNotCancelable
from .models import Order, OrderEvent


class WayForwardFilter(admin.SimpleListFilter):
    """Orders the stuck-order sweep reports: no way forward for STUCK_ORDER_MINUTES."""

    title = "way forward"
    parameter_name = "way_forward"
    NONE = "none"

    def lookups(self, request, model_admin):
        return [(self.NONE, "none (stuck)")]

    def queryset(self, request, queryset):
        if self.value() == self.NONE:
            return queryset.filter(pk__in=selectors.stuck_orders().values("pk"))
        return queryset


class OrderEventInline(admin.TabularInline):
    model = OrderEvent
    fields = ["version", "from_status", "to_status", "cause", "message_id", "at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["version"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(UUIDSearchMixin, admin.ModelAdmin):
    """Orders are read here and changed only through the state machine (the cancel action)."""

    list_display = [
        "id",
        "buyer",
        "product_name",
        "quantity",
        "total",
        "currency",
        "status",
        "created_at",
    ]
    list_filter = ["status", WayForwardFilter, "currency", "created_at"]
    search_fields = ["buyer__username", "buyer__email", "product_name"]
    list_select_related = ["buyer"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "id",
        "buyer",
        "product_name",
        "quantity",
        "unit_price",
        "currency",
        "total",
        "status",
        "failed_from",
        "version",
        "idempotency_key",
        "created_at",
        "updated_at",
    ]
    inlines = [OrderEventInline]
    actions = ["cancel_orders"]

    # Stored in minor units; shown, like in the API, in major units of the order's currency.
    @admin.display(description="unit price", ordering="unit_price_minor")
    def unit_price(self, order: Order) -> str:
        return str(money.to_major(order.unit_price_minor, order.currency))

    @admin.display(description="total", ordering="total_minor")
    def total(self, order: Order) -> str:
        return str(money.to_major(order.total_minor, order.currency))

    def has_add_permission(self, request) -> bool:
        return False  # orders come in through the API, which validates and publishes them

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # an accepted order is never lost, not even by a click

    @admin.action(description="Cancel selected orders (PENDING only)", permissions=["change"])
    def cancel_orders(self, request, queryset) -> None:
        canceled, refused = 0, []
        for order_id in queryset.values_list("pk", flat=True):
            try:
                services.cancel_order(order_id=order_id, actor=request.user)
                canceled += 1
            except OrderNotCancelable:
                refused.append(str(order_id))
        if canceled:
            self.message_user(request, f"Canceled {canceled} order(s).", messages.SUCCESS)
        if refused:
            self.message_user(
                request,
                f"Not canceled, no longer PENDING: {', '.join(refused)}.",
                messages.WARNING,
            )
